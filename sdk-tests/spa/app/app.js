// The app's whole code: one SDK client at a time (window.app.client), made with createAuth0Client, and the SDK's own
// calls. Every call answers { ok, value } or { ok: false, error } (the SDK's error fields), so that the Playwright test
// can read failures as data.
(function () {
  const wrap = (fn) => async (...args) => {
    try {
      return { ok: true, value: await fn(...args) };
    } catch (e) {
      return { ok: false, error: { name: e && e.constructor && e.constructor.name, error: e && e.error, error_description: e && e.error_description, message: String(e && e.message) } };
    }
  };
  const app = {
    client: null,
    create: wrap(async (options) => { app.client = await auth0.createAuth0Client(options); return true; }),
    // Resolves only if the SDK fails before navigating; otherwise the page goes to Callsign.
    loginWithRedirect: wrap((options) => app.client.loginWithRedirect(options)),
    handleRedirectCallback: wrap(async () => { const r = await app.client.handleRedirectCallback(); window.history.replaceState({}, '', '/'); return r; }),
    getUser: wrap(() => app.client.getUser()),
    isAuthenticated: wrap(() => app.client.isAuthenticated()),
    getTokenSilently: wrap((options) => app.client.getTokenSilently(options)),
    logout: wrap((options) => app.client.logout(options)),
    // A plain cross-origin call, to show what CORS lets this origin read.
    fetchStatus: wrap(async (url, init) => (await fetch(url, init)).status),
  };
  window.app = app;
})();
