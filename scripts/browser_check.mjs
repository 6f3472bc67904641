// Browser check of CORS and of Swagger UI's Content-Security-Policy, in a real headless
// Chromium (issue 14). Like scripts/swagger_ui_check.mjs it is run by hand and only ever
// talks to 127.0.0.1.
//
// 1. A page served from another local origin (this script serves it on DASH_PORT) gets a
//    token from /oauth/token and reads a study with it: a cross-origin POST, then a GET with
//    `Authorization` (a preflight), reading the `ETag` and `X-Request-Id` the API exposes.
// 2. Swagger UI opens under its CSP with no violation reported and its operations drawn.
//
// How to run (outside the repo, so no node_modules land in it):
//   mkdir -p /tmp/browser-check && cd /tmp/browser-check && npm init -y && npm install playwright-core
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/trialops_browser_check TRIALOPS_BIND=127.0.0.1:18283 \
//     TRIALOPS_CORS_ORIGINS=http://127.0.0.1:18284 ./target/debug/trialops serve > /tmp/browser_admin.json &
//   ./target/debug/trialops demo   # (or create one study) so there is a study to read
//   cd /tmp/browser-check && node /path/to/scripts/browser_check.mjs
//
// Settings (environment): TRIALOPS_URL (default http://127.0.0.1:18283), DASH_PORT (18284),
// ADMIN_JSON (/tmp/browser_admin.json: the line `serve` printed), CHROMIUM (/usr/bin/chromium).
// Exit code 0 when both checks pass.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const require = createRequire(path.join(process.cwd(), 'noop.js'));
const { chromium } = require('playwright-core');

const BASE = process.env.TRIALOPS_URL || 'http://127.0.0.1:18283';
const DASH_PORT = Number(process.env.DASH_PORT || 18284);
if (new URL(BASE).hostname !== '127.0.0.1') {
  console.error(`refusing to target ${BASE}: this check only talks to 127.0.0.1`);
  process.exit(2);
}
const admin = JSON.parse(fs.readFileSync(process.env.ADMIN_JSON || '/tmp/browser_admin.json', 'utf8').split('\n')[0]);

// The dashboard page, on its own origin.
const page_html = `<!doctype html><meta charset="utf-8"><title>dash</title><pre id="out">running</pre>
<script>
(async () => {
  const out = document.getElementById('out');
  try {
    const form = new URLSearchParams({grant_type: 'client_credentials',
      client_id: ${JSON.stringify(admin.client_id)}, client_secret: ${JSON.stringify(admin.client_secret)}});
    const tokenResp = await fetch(${JSON.stringify(BASE)} + '/oauth/token', {method: 'POST', body: form});
    const token = (await tokenResp.json()).access_token;
    const list = await fetch(${JSON.stringify(BASE)} + '/api/v1/studies?limit=1',
      {headers: {Authorization: 'Bearer ' + token}});
    const studies = (await list.json()).data;
    const one = await fetch(${JSON.stringify(BASE)} + '/api/v1/studies/' + studies[0].id,
      {headers: {Authorization: 'Bearer ' + token, 'X-Change-Reason': 'none'}});
    const study = await one.json();
    out.textContent = JSON.stringify({status: one.status, protocol: study.protocol_number,
      etag: one.headers.get('ETag'), request_id: one.headers.get('X-Request-Id'),
      remaining: one.headers.get('RateLimit-Remaining')});
  } catch (e) { out.textContent = 'error: ' + e; }
})();
</script>`;
const dash = http.createServer((req, res) => {
  res.writeHead(200, {'content-type': 'text/html'});
  res.end(page_html);
}).listen(DASH_PORT, '127.0.0.1');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let failures = 0;

// 1. CORS.
const page = await browser.newPage();
page.on('console', (m) => console.log(`  [dash console] ${m.text()}`));
await page.goto(`http://127.0.0.1:${DASH_PORT}/`);
await page.waitForFunction(() => document.getElementById('out').textContent !== 'running', null, {timeout: 15000});
const text = await page.textContent('#out');
let read = {};
try { read = JSON.parse(text); } catch { /* an error message */ }
const corsOk = read.status === 200 && !!read.protocol && !!read.etag && !!read.request_id;
console.log(`${corsOk ? 'OK  ' : 'FAIL'} cross-origin read from http://127.0.0.1:${DASH_PORT}: ${text}`);
if (!corsOk) failures++;

// 2. Swagger UI under its CSP.
const ui = await browser.newPage();
const violations = [];
ui.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()); });
const resp = await ui.goto(`${BASE}/swagger-ui/`);
const csp = resp.headers()['content-security-policy'];
await ui.waitForSelector('.opblock', {timeout: 20000}).catch(() => {});
const operations = await ui.locator('.opblock').count();
const cspOk = !!csp && violations.length === 0 && operations > 20;
console.log(`${cspOk ? 'OK  ' : 'FAIL'} Swagger UI under CSP "${csp}": ${operations} operations drawn, ${violations.length} violation(s)`);
for (const v of violations) console.log(`     ${v}`);
if (!cspOk) failures++;

await browser.close();
dash.close();
process.exit(failures ? 1 : 0);
