// The single-page app's static server: HTTPS with the test certificate, on each port given. It serves the page and
// the SDK's browser bundle from node_modules, unmodified; every other path is the page (a single-page app).
// Usage: node server.mjs <cert.pem> <key.pem> <port> [<port>…]
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const [cert, key, ...ports] = process.argv.slice(2);
const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const files = {
  '/auth0-spa-js.production.js': [here('./node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.js'), 'text/javascript'],
  '/app.js': [here('./app/app.js'), 'text/javascript'],
};
const page = [here('./app/index.html'), 'text/html; charset=utf-8'];
const tls = { cert: readFileSync(cert), key: readFileSync(key) };
for (const port of ports) {
  createServer(tls, (req, res) => {
    const path = new URL(req.url, 'https://localhost').pathname;
    if (path === '/favicon.ico') { res.writeHead(204).end(); return; }
    const [file, type] = files[path] || page;
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }).end(readFileSync(file));
  }).listen(Number(port), '127.0.0.1', () => console.log(`app on https://localhost:${port}/`));
}
