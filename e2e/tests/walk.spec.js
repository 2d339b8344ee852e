// A walk through every dashboard page: at 1280 px and at 390 px (a phone), and at 1280 px in the dark colour scheme.
// On each page: the heading, the breadcrumb, the menu entry marked aria-current="page", a full-page screenshot and
// axe (no serious or critical violations, colour contrast included). On the Logs list and one event: the dates in the
// browser's time zone (named on the page), none wrapped, and no element past the screen's edge. On the phone the menu is collapsed: it is
// opened and a link followed with the keyboard alone.
const { test, expect } = require('../lib/fixtures');
const { expectNoSeriousViolations } = require('../lib/a11y');
const { shot } = require('../lib/shots');
const { signIn } = require('../lib/dashboard');

const WIDE = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

/** The pages, each with its heading, breadcrumb and current menu entry (filled in with ids in `pages`). */
function pages({ app, user, event }) {
  return [
    { name: 'overview', path: '/dashboard', h1: 'Overview', crumbs: ['Overview'], current: 'Overview' },
    { name: 'applications', path: '/dashboard/applications', h1: 'Applications', crumbs: ['Applications'], current: 'Applications' },
    {
      name: 'application', path: `/dashboard/applications/${encodeURIComponent(app.client_id)}`, h1: `Application ${app.name}`,
      crumbs: ['Applications', `Application ${app.name}`], current: 'Applications',
    },
    { name: 'users', path: '/dashboard/users', h1: 'Users', crumbs: ['Users'], current: 'Users' },
    {
      name: 'user', path: `/dashboard/users/${encodeURIComponent(user.user_id)}`, h1: `User ${user.email}`,
      crumbs: ['Users', `User ${user.email}`], current: 'Users',
    },
    {
      name: 'branding', path: '/dashboard/branding', h1: 'Universal Login', crumbs: ['Branding', 'Universal Login'],
      current: 'Universal Login',
    },
    {
      name: 'phone message', path: '/dashboard/mfa/phone', h1: 'Phone Message',
      crumbs: ['Security', 'Multi-factor Auth', 'Phone Message'], current: 'Phone Message',
    },
    {
      name: 'phone destinations', path: '/dashboard/security/phone-destinations', h1: 'Phone destinations',
      crumbs: ['Security', 'Multi-factor Auth', 'Phone destinations'], current: 'Phone destinations',
    },
    {
      name: 'sms pumping', path: '/dashboard/security/sms-pumping', h1: 'SMS pumping',
      crumbs: ['Security', 'Multi-factor Auth', 'SMS pumping'], current: 'SMS pumping',
    },
    {
      name: 'usage and spend', path: '/dashboard/security/phone-usage', h1: 'Usage and spend',
      crumbs: ['Security', 'Multi-factor Auth', 'Usage and spend'], current: 'Usage and spend',
    },
    {
      name: 'attack protection', path: '/dashboard/security/attack-protection', h1: 'Attack Protection',
      crumbs: ['Security', 'Attack Protection'], current: 'Attack Protection',
    },
    { name: 'logs', path: '/dashboard/logs', h1: 'Logs', crumbs: ['Monitoring', 'Logs'], current: 'Logs' },
    {
      name: 'log event', path: `/dashboard/logs/${encodeURIComponent(event.log_id)}`, h1: 'API Operation',
      crumbs: ['Monitoring', 'Logs', 'API Operation'], current: 'Logs',
    },
    {
      name: 'log streams', path: '/dashboard/log-streams', h1: 'Log Streams', crumbs: ['Monitoring', 'Log Streams'],
      current: 'Log Streams',
    },
    {
      name: 'inbox', path: '/dashboard/inbox', h1: 'Development inbox', crumbs: ['Monitoring', 'Development inbox'],
      current: 'Development inbox',
    },
    { name: 'settings', path: '/dashboard/settings', h1: 'Settings', crumbs: ['Settings'], current: 'Settings' },
  ];
}

/** Presses Tab until the focused element matches `selector` (at most `max` presses). */
async function tabTo(page, selector, max = 40) {
  for (let i = 0; i < max; i += 1) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((sel) => document.activeElement?.matches(sel) ?? false, selector)) return;
  }
  throw new Error(`Tab never reached ${selector}`);
}

/** Everything the walk needs to exist: an operator, an application, a user and a log event. */
async function fixtures(mgmt) {
  const operator = await mgmt.createUser({ app_metadata: { roles: ['callsign:admin'] } });
  const app = await mgmt.createClient({ name: 'Walk app', callbacks: ['http://127.0.0.1:9/callback'] });
  const user = await mgmt.createUser();
  // A Management API write (`sapi`, by the bootstrap client): its page is titled with the type's description.
  const [event] = await mgmt.get('/logs?q=type:sapi&per_page=1');
  return { operator, ids: { app, user, event } };
}

/**
 * The Logs pages: app.js rewrote each date into the browser's zone and named it; no date wraps inside; and no
 * element reaches past the screen's right edge (the table collapses to stacked rows on a phone).
 */
async function checkLogsPage(page, viewport, timezoneId) {
  const zones = page.locator('[data-time-zone]');
  await expect(zones.first()).toHaveText(timezoneId);
  for (const zone of await zones.all()) await expect(zone).toHaveText(timezoneId);
  const times = page.locator('time[data-local-time]');
  expect(await times.count()).toBeGreaterThan(0);
  for (const t of await times.all()) {
    await expect(t).toHaveAttribute('title', /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/);
    await expect(t).not.toHaveText(/UTC$/);
  }
  const report = await page.evaluate(() => {
    const wide = [...document.querySelectorAll('body *')]
      .filter((el) => el.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
      .map((el) => `${el.tagName.toLowerCase()}.${el.className} (${Math.round(el.getBoundingClientRect().right)} px)`);
    // A text on one line has one box per line it spans.
    const lines = (el) => { const r = document.createRange(); r.selectNodeContents(el); return r.getClientRects().length; };
    const wrapped = [...document.querySelectorAll('time[data-local-time], .when .ago')]
      .filter((el) => lines(el) > 1)
      .map((el) => el.textContent);
    return { wide, wrapped };
  });
  expect(report.wide, `wider than ${viewport.width} px`).toEqual([]);
  expect(report.wrapped, 'dates wrapped inside').toEqual([]);
}

async function walk({ browser, mgmt }, { viewport, colorScheme, tag }) {
  const { operator, ids } = await fixtures(mgmt);
  // A time zone other than the server's UTC, so that the local-time script shows.
  const timezoneId = viewport === PHONE ? 'America/New_York' : 'Europe/Paris';
  const context = await browser.newContext({ baseURL: process.env.CALLSIGN_E2E_BASE_URL, viewport, colorScheme, timezoneId });
  const page = await context.newPage();
  try {
    // The sign-in page (a card, like the login pages: the same stylesheet) in this scheme and width.
    await page.goto('/dashboard/login');
    await shot(page, `${tag} sign-in`);
    await expectNoSeriousViolations(page, { name: `${tag} sign-in` });
    await signIn(page, operator);
    const side = page.getByRole('navigation', { name: 'Dashboard' });
    const crumbs = page.getByRole('navigation', { name: 'Breadcrumb' });
    for (const p of pages(ids)) {
      await page.goto(p.path);
      await expect(page.getByRole('heading', { level: 1 })).toHaveText(p.h1);
      await expect(crumbs.getByRole('listitem')).toHaveText(p.crumbs);
      await expect(crumbs.locator('[aria-current="page"]')).toHaveText(p.h1);
      // The operator and Sign out are on every page, whatever the width.
      await expect(page.getByRole('banner')).toContainText(operator.email);
      await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible();
      if (viewport === PHONE) {
        // Collapsed: only the "Menu" summary shows.
        await expect(side.getByRole('link', { name: p.current, exact: true })).toBeHidden();
        await expect(page.locator('details.menu > summary')).toBeVisible();
      } else {
        await expect(page.locator('details.menu > summary')).toBeHidden();
      }
      await shot(page, `${tag} ${p.name}`);
      await shot(page, `${tag} ${p.name} screen`, { fullPage: false });
      await expectNoSeriousViolations(page, { name: `${tag} ${p.name}` });
      if (viewport === PHONE) await page.locator('details.menu > summary').click();
      const current = side.getByRole('link', { name: p.current, exact: true });
      await expect(current).toBeVisible();
      await expect(current).toHaveAttribute('aria-current', 'page');
      await expect(side.locator('[aria-current="page"]')).toHaveCount(1);
      // No page is wider than the screen.
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(viewport.width);
      if (p.current === 'Logs') await checkLogsPage(page, viewport, timezoneId);
    }
    if (viewport === PHONE) {
      // The keyboard alone: Tab to "Menu", open it with Enter, Tab to Logs, follow it with Enter.
      await page.goto('/dashboard/mfa/phone');
      await tabTo(page, 'details.menu > summary');
      await page.keyboard.press('Enter');
      await expect(page.locator('details.menu')).toHaveAttribute('open', '');
      await shot(page, `${tag} menu open`, { fullPage: false });
      await expectNoSeriousViolations(page, { name: `${tag} menu open` });
      await tabTo(page, 'nav.side a[href="/dashboard/logs"]');
      await page.keyboard.press('Enter');
      await expect(page).toHaveURL(/\/dashboard\/logs$/);
      await expect(page.getByRole('heading', { level: 1 })).toHaveText('Logs');
      // And closed again with Space.
      await tabTo(page, 'details.menu > summary');
      await page.keyboard.press(' ');
      await expect(page.locator('details.menu')).toHaveAttribute('open', '');
      await page.keyboard.press(' ');
      await expect(page.locator('details.menu')).not.toHaveAttribute('open', '');
    } else {
      // Every menu entry leads where it says, the Recovery Code entry to its section of Settings.
      await page.goto('/dashboard/mfa/phone');
      await side.getByRole('link', { name: 'Recovery Code' }).click();
      await expect(page).toHaveURL(/\/dashboard\/settings#recovery$/);
      await expect(page.locator('#recovery-toggle')).toBeVisible();
      // The always-open menu is in the Tab order (no Menu button to pass on a wide screen).
      await page.goto('/dashboard/mfa/phone');
      await tabTo(page, 'nav.side a[href="/dashboard/users"]');
      await page.keyboard.press('Enter');
      await expect(page).toHaveURL(/\/dashboard\/users$/);
    }
  } finally {
    await context.close();
    await mgmt.delete(`/users/${encodeURIComponent(operator.user_id)}`);
    await mgmt.delete(`/users/${encodeURIComponent(ids.user.user_id)}`);
    await mgmt.delete(`/clients/${encodeURIComponent(ids.app.client_id)}`);
  }
}

test('every dashboard page at 1280 px', async ({ browser, mgmt }) => {
  await walk({ browser, mgmt }, { viewport: WIDE, colorScheme: 'light', tag: 'wide' });
});

test('every dashboard page at 390 px, the menu opened and followed by keyboard', async ({ browser, mgmt }) => {
  await walk({ browser, mgmt }, { viewport: PHONE, colorScheme: 'light', tag: 'phone' });
});

test('every dashboard page at 1280 px in the dark colour scheme', async ({ browser, mgmt }) => {
  await walk({ browser, mgmt }, { viewport: WIDE, colorScheme: 'dark', tag: 'dark' });
});
