// Swagger UI check, by hand: drives the service's Swagger UI in a real headless Chromium the way a
// newcomer would (Authorize -> create a study -> create a site -> list sites) and screenshots
// each step. It is NOT part of the test suite and only ever talks to 127.0.0.1.
//
// How to run (outside the repo, so no node_modules land in it):
//   apt-get install -y chromium
//   mkdir -p /tmp/swagger-check && cd /tmp/swagger-check && npm init -y && npm install playwright-core
//   cd /work/main && cargo build
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/trialops_swagger_check TRIALOPS_BIND=127.0.0.1:18282 \
//     ./target/debug/trialops serve > /tmp/swagger_admin.json 2>/tmp/swagger_serve.log &
//   cd /tmp/swagger-check && node /work/main/scripts/swagger_ui_check.mjs
//   (playwright-core is looked up in the node_modules of the folder you run it from)
//
// Settings (environment):
//   TRIALOPS_URL   default http://127.0.0.1:18282 (any other host than 127.0.0.1 is refused)
//   ADMIN_JSON     default /tmp/swagger_admin.json: the {"client_id","client_secret"} line `serve` prints
//   AUTH           oauth2 (default: the Authorize dialog's client-credentials flow) or bearer
//   BEARER_TOKEN   with AUTH=bearer: a token, e.g. from
//                  curl -s -u "$ID:$SECRET" -d grant_type=client_credentials http://127.0.0.1:18282/oauth/token
//   PROTOCOL       the new study's protocol_number, default SW-1 (it must be unique: use another on a re-run)
//   SHOTS          screenshot folder, default /tmp/swagger-check/shots
//   CHROMIUM       default /usr/bin/chromium
//   WRONG_SECRET=1 also enter a wrong client_secret in the oauth2 section (creates nothing) and report
//                  whether the browser raised its own Basic-auth challenge (a native sign-in prompt,
//                  from the 401's `WWW-Authenticate: Basic`) before Swagger UI could show its error.
// Exit code 0 when every step gave the expected status (201, 201, 200 with the site listed).
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const require = createRequire(path.join(process.cwd(), 'noop.js'));
const { chromium } = require('playwright-core');

const BASE = process.env.TRIALOPS_URL || 'http://127.0.0.1:18282';
if (new URL(BASE).hostname !== '127.0.0.1') {
  console.error(`refusing to target ${BASE}: this check only talks to 127.0.0.1`);
  process.exit(2);
}
const AUTH = process.env.AUTH || 'oauth2';
const SHOTS = process.env.SHOTS || '/tmp/swagger-check/shots';
fs.mkdirSync(SHOTS, { recursive: true });
const admin = JSON.parse(fs.readFileSync(process.env.ADMIN_JSON || '/tmp/swagger_admin.json', 'utf8').split('\n')[0]);

const results = [];
const note = (step, ok, detail) => {
  results.push({ step, ok, detail });
  console.log(`${ok ? 'OK  ' : 'FAIL'} ${step}: ${detail}`);
};
const shot = async (page, name, locator) => {
  const file = path.join(SHOTS, `${AUTH}-${name}.png`);
  if (locator) await locator.screenshot({ path: file });
  else await page.screenshot({ path: file });
  console.log(`     screenshot ${file}`);
  return file;
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });

// Every request to the service other than Swagger UI's own assets, with what was answered.
page.on('request', (req) => {
  const url = new URL(req.url());
  if (url.pathname.startsWith('/swagger-ui/')) return;
  const h = req.headers();
  console.log(`  --> ${req.method()} ${url.pathname}${url.search}`
    + (h.authorization ? ` [Authorization: ${h.authorization.slice(0, 30)}...]` : ' [no Authorization]')
    + (h['content-type'] ? ` [Content-Type: ${h['content-type']}]` : '')
    + (req.postData() ? ` body=${req.postData()}` : ''));
});
page.on('response', async (res) => {
  const url = new URL(res.url());
  if (url.pathname.startsWith('/swagger-ui/') || url.pathname === '/api-docs/openapi.json') return;
  let body = '';
  try { body = (await res.text()).slice(0, 300); } catch { /* no body */ }
  console.log(`  <-- ${res.status()} ${res.request().method()} ${url.pathname} ${body}`);
});
page.on('requestfailed', (req) => console.log(`  xxx ${req.method()} ${req.url()} ${req.failure()?.errorText}`));
page.on('console', (msg) => { if (msg.type() === 'error') console.log(`  console.error: ${msg.text()}`); });

async function authorize() {
  await page.click('.btn.authorize');
  const modal = page.locator('.modal-ux');
  await modal.waitFor();
  if (AUTH === 'bearer') {
    const token = process.env.BEARER_TOKEN;
    if (!token) throw new Error('AUTH=bearer needs BEARER_TOKEN');
    const form = modal.locator('.auth-container', { has: page.locator('h4', { hasText: 'bearer' }) });
    await form.locator('#auth-bearer-value').fill(token);
    await form.locator('button.authorize').click();
    await form.locator('text=Authorized').waitFor({ timeout: 5000 }).catch(() => {});
    const ok = await form.locator('text=Authorized').count() > 0;
    await shot(page, '02-authorized', modal);
    note('authorize (bearer)', ok, ok ? 'dialog shows "Authorized"' : 'dialog does not show "Authorized"');
  } else {
    const section = modal.locator('.auth-container', { has: page.locator('h4', { hasText: 'oauth2 (OAuth2, clientCredentials)' }) });
    await section.locator('#client_id_clientCredentials').fill(admin.client_id);
    await section.locator('#client_secret_clientCredentials').fill(admin.client_secret);
    await shot(page, '02a-oauth2-filled', modal);
    const tokenResponse = page.waitForResponse((r) => new URL(r.url()).pathname === '/oauth/token', { timeout: 10000 })
      .catch(() => null);
    await section.locator('button.authorize').click();
    const res = await tokenResponse;
    await page.waitForTimeout(500);
    const authorized = await section.locator('h6', { hasText: 'Authorized' }).count() > 0
      || await section.locator('button', { hasText: 'Logout' }).count() > 0;
    const errors = (await section.locator('.errors').allInnerTexts()).join(' | ');
    await shot(page, '02-authorized', modal);
    note('authorize (oauth2 clientCredentials)', authorized && res?.status() === 200,
      `token request answered ${res ? res.status() : 'nothing'}; dialog ${authorized ? 'shows Authorized/Logout' : 'not authorized'}`
      + (errors ? `; dialog errors: ${errors}` : ''));
  }
  await modal.locator('.close-modal').click();
  await modal.waitFor({ state: 'detached' });
}

// Expand an operation, Try it out, optionally set the JSON body, Execute; answers the status
// Swagger UI shows and the body it received.
async function tryOperation(opId, bodyJson, shotName, expect) {
  const op = page.locator(`#${opId}`);
  await op.locator('.opblock-summary-control').click();
  await op.locator('.try-out__btn').click();
  if (bodyJson !== undefined) {
    const editor = op.locator('textarea.body-param__text');
    await editor.fill(JSON.stringify(bodyJson, null, 2));
  }
  const apiResponse = page.waitForResponse((r) => r.url().startsWith(BASE + '/api/v1/'), { timeout: 10000 });
  await op.locator('.btn.execute').click();
  const res = await apiResponse;
  const statusCell = op.locator('.live-responses-table tbody tr.response .response-col_status').first();
  await statusCell.waitFor();
  const shownStatus = (await statusCell.innerText()).trim().split(/\s+/)[0];
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  await shot(page, shotName, op);
  // A close-up of what a person reads: the curl line, the request URL and the server's answer.
  await shot(page, `${shotName}-response`, op.locator('.responses-inner > div').first());
  note(`${opId}`, shownStatus === String(expect),
    `Swagger UI shows ${shownStatus} (network ${res.status()}, expected ${expect})`
    + (shownStatus === String(expect) ? '' : `; body ${JSON.stringify(body)}`));
  // Collapse again so the next screenshots stay readable.
  await op.locator('.opblock-summary-control').click();
  return { status: shownStatus, body };
}

// A newcomer's typo: a wrong secret. Chromium is told (CDP Fetch.authRequired) to report, then
// cancel, any HTTP auth challenge, which is what a person clicking "Cancel" on the prompt does.
async function wrongSecret() {
  const p = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await p.goto(`${BASE}/swagger-ui/`);
  const cdp = await p.context().newCDPSession(p);
  let challenge = null;
  await cdp.send('Fetch.enable', { handleAuthRequests: true, patterns: [{ urlPattern: '*/oauth/token*' }] });
  cdp.on('Fetch.requestPaused', (e) => cdp.send('Fetch.continueRequest', { requestId: e.requestId }));
  cdp.on('Fetch.authRequired', (e) => {
    challenge = e.authChallenge;
    cdp.send('Fetch.continueWithAuth', { requestId: e.requestId, authChallengeResponse: { response: 'CancelAuth' } });
  });
  const status = p.waitForResponse((r) => new URL(r.url()).pathname === '/oauth/token', { timeout: 10000 })
    .then((r) => r.status()).catch(() => 'nothing');
  await p.click('.btn.authorize');
  const modal = p.locator('.modal-ux');
  await modal.locator('#client_id_clientCredentials').fill(admin.client_id);
  await modal.locator('#client_secret_clientCredentials').fill('wrong-secret');
  await modal.locator('button[aria-label="Apply given OAuth2 credentials"]').click();
  const answered = await status;
  await p.waitForTimeout(500);
  const errors = (await modal.locator('.errors').allInnerTexts()).join(' | ').replace(/\s+/g, ' ');
  await shot(p, '06-wrong-secret', modal);
  note('wrong secret', !challenge && /invalid_client/.test(errors),
    `token request answered ${answered}; browser auth challenge: ${challenge ? JSON.stringify(challenge) : 'none'}; `
    + `dialog: ${errors || '(no error shown)'}`);
  await p.close();
}

try {
  const docs = page.waitForResponse((r) => r.url().endsWith('/api-docs/openapi.json'));
  await page.goto(`${BASE}/swagger-ui/`);
  note('load swagger ui', (await docs).status() === 200, `openapi.json ${(await docs).status()}`);
  await page.waitForSelector('.btn.authorize');
  await page.waitForSelector('#operations-studies-create_study');
  await shot(page, '01-loaded');

  await authorize();

  const study = await tryOperation('operations-studies-create_study',
    { protocol_number: process.env.PROTOCOL || 'SW-1', title: 'Swagger study', phase: 'phase2', currency: 'EUR', target_enrollment: 10 },
    '03-create-study', 201);
  if (study.status === '201' && study.body?.id) {
    console.log(`     study id ${study.body.id}`);
    const site = await tryOperation('operations-sites-create_site',
      { study_id: study.body.id, site_number: '001', name: 'Site', country: 'DE' },
      '04-create-site', 201);
    const list = await tryOperation('operations-sites-list_sites', undefined, '05-list-sites', 200);
    const items = list.body?.items ?? list.body?.data ?? (Array.isArray(list.body) ? list.body : []);
    const listed = items.some((s) => s.id === site.body?.id);
    note('site listed', listed, `${items.length} site(s) in the list; new site ${site.body?.id} ${listed ? 'is' : 'is NOT'} among them`);
  } else {
    note('create site / list sites', false, 'skipped: no study was created');
  }
  if (process.env.WRONG_SECRET === '1') await wrongSecret();
} catch (e) {
  note('script', false, e.stack || String(e));
  await shot(page, '99-error').catch(() => {});
} finally {
  await browser.close();
}
const failed = results.filter((r) => !r.ok).length;
console.log(`swagger ui check: ${results.length - failed} ok, ${failed} failed`);
process.exit(failed ? 1 : 0);
