// Signing an operator in to the dashboard, for the specs that start signed in.
const { expect } = require('@playwright/test');

/** Signs `operator` ({ email, password }) in; the dashboard lands on the Overview. */
async function signIn(page, operator) {
  await page.goto('/dashboard/login');
  await page.getByLabel('Email').fill(operator.email);
  await page.getByLabel('Password').fill(operator.password);
  await page.getByLabel('Password').press('Enter');
  await expect(page).toHaveURL(/\/dashboard$/);
}

module.exports = { signIn };
