// Preloaded into a0deploy (NODE_OPTIONS=--require): when a fetch fails, say why (undici's `cause`: the socket error
// and its code), which a0deploy's own "fetch failed" leaves out.
'use strict';
const original = globalThis.fetch;
if (typeof original === 'function') {
  globalThis.fetch = async function traced(input, init) {
    try {
      return await original(input, init);
    } catch (e) {
      const url = typeof input === 'string' ? input : (input && input.url) || String(input);
      const c = e && e.cause;
      console.error(`trace-fetch: ${init?.method || 'GET'} ${url} failed after ${e?.message}: ${c ? `${c.code || ''} ${c.message || c}` : 'no cause'}`);
      throw e;
    }
  };
}
