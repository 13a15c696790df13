// tests/e2e/dashboard.mjs: the lab dashboard in a real Chromium (Debian's
// /usr/bin/chromium driven by playwright-core) against a real
// `lab-bridge serve` (started by dashboard_e2e.sh), with results sent over
// MLLP by python-hl7's mllp_send and orders acknowledged by a python-hl7
// LIS. Each step prints PASS or FAIL with what it saw; the exit code is the
// number of failed steps.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`missing ${name}`);
  return v;
};
const BASE = env('E2E_BASE_URL');            // http://127.0.0.1:PORT
const MLLP_PORT = env('E2E_MLLP_PORT');
const TOKEN = env('E2E_TOKEN');              // "clinician": every role
const NURSE_TOKEN = env('E2E_NURSE_TOKEN');  // "nurse": results:read, criticals:ack
const BIN = env('E2E_BIN');
const WORK = env('E2E_WORK');
const SHOTS = env('E2E_SCREENSHOTS');
const SERVER_PID = Number(env('E2E_SERVER_PID'));
const LIS_RECEIVED = env('E2E_LIS_RECEIVED');
const FIXTURE = env('E2E_GUIDE_ORU');

fs.mkdirSync(SHOTS, { recursive: true });

let failures = 0;
const pageErrors = [];

async function step(name, body) {
  const started = Date.now();
  try {
    await body();
    console.log(`PASS ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failures += 1;
    console.log(`FAIL ${name}: ${e.message}`);
    if (process.env.E2E_VERBOSE) console.log(e.stack);
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

// ---- peers ------------------------------------------------------------------

let controlSeq = 0;
function sendOru(text) {
  const file = path.join(WORK, `oru-${++controlSeq}.mllp`);
  fs.writeFileSync(file, Buffer.concat([Buffer.from([0x0b]), Buffer.from(text.replace(/\n/g, '\r')),
    Buffer.from([0x1c, 0x0d])]));
  const r = spawnSync('/usr/bin/mllp_send', ['-p', MLLP_PORT, '-f', file, '127.0.0.1'],
    { encoding: 'utf8', timeout: 20000 });
  check(r.status === 0, `mllp_send exited ${r.status}: ${r.stderr}`);
  check(/MSA\|AA\|/.test(r.stdout), `expected MSA|AA, got ${JSON.stringify(r.stdout)}`);
  return r.stdout;
}

function potassiumOru(controlId, when, value, flag) {
  return [
    `MSH|^~\\&|LAB_LIS|REFERENCE_LAB|PMS_LAB|MPS_PMS|${when}||ORU^R01|${controlId}|P|2.5.1`,
    'PID|1||12345^^^MPS_PMS^MR||Doe^Jane||19900315|F',
    `OBR|1|ORD-${controlId}|FIL-${controlId}|BMP^Basic Metabolic Panel|||${when}|||||||||Dr. Smith||||||||F`,
    `OBX|1|NM|K^Potassium||${value}|mEq/L|3.5-5.0|${flag}|||F|||${when}`,
  ].join('\n');
}

async function api(method, target, body) {
  const r = await fetch(BASE + target, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

function lab_bridge(...args) {
  return spawnSync(BIN, args, { encoding: 'utf8', env: process.env, timeout: 20000 });
}

// ---- the browser --------------------------------------------------------------

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-bridge-chrome-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 900 },
  locale: 'en-US',
  timezoneId: 'UTC',
});
context.setDefaultTimeout(10000);

async function newPage() {
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${e.message}`));
  return page;
}

async function signIn(page, token) {
  await page.goto(`${BASE}/lab`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function openPatient(page, query, name) {
  await page.getByLabel('PMS patient id or name').fill(query);
  await page.getByLabel('PMS patient id or name').press('Enter');
  await page.locator('button.patient-match', { hasText: name }).click();
  await page.locator('#patient-title').waitFor();
}

const a = await newPage();      // the clinician
const b = await newPage();      // a nurse at another screen
let potassiumId = 0;

try {
  await step('sign in with the API token; the page holds no data before', async () => {
    await a.goto(`${BASE}/lab`);
    check(await a.getByLabel('API token').isVisible(), 'no input labelled "API token"');
    check(!(await a.locator('#dashboard-view').isVisible()), 'dashboard visible before sign-in');
    await signIn(a, TOKEN);
    await a.locator('#dashboard-view').waitFor();
    await a.locator('#live-status.is-live').waitFor({ timeout: 5000 });
    check(await a.evaluate(() => sessionStorage.getItem('labbridge.token')) === TOKEN,
      'token not kept in sessionStorage');
    check(await a.evaluate(() => localStorage.length) === 0, 'something written to localStorage');
    await signIn(b, NURSE_TOKEN);
    await b.locator('#live-status.is-live').waitFor({ timeout: 5000 });
  });

  await step('the guide\'s ORU over MLLP: banner without reload within 2 s (potassium 6.8 HH)', async () => {
    await a.evaluate(() => { window.e2eSameDocument = true; });
    const ack = sendOru(fs.readFileSync(FIXTURE, 'utf8'));
    check(ack.includes('MSG001'), `ACK does not name MSG001: ${ack}`);
    const item = a.locator('#critical-list li', { hasText: 'Potassium' });
    await item.waitFor({ timeout: 2000 });
    const text = await item.innerText();
    for (const want of ['Patient 12345', 'Potassium', '6.8', 'mEq/L', 'HH', 'Critical high', 'received']) {
      check(text.includes(want), `banner lacks "${want}": ${text}`);
    }
    check(await a.evaluate(() => window.e2eSameDocument === true), 'the page was reloaded');
    await b.locator('#critical-list li', { hasText: 'Potassium' }).waitFor({ timeout: 2000 });
    await a.locator('#announcer', { hasText: 'Critical result: Potassium 6.8' })
      .waitFor({ state: 'attached', timeout: 2000 });
    await a.locator('#critical-banner').screenshot({ path: path.join(SHOTS, 'banner.png') });
  });

  await step('patient view: 5 results, potassium row red, bold and written HH', async () => {
    await openPatient(a, '12345', 'Doe, Jane');
    const rows = a.locator('#reports tr.result');
    await rows.nth(4).waitFor();
    check(await rows.count() === 5, `expected 5 result rows, got ${await rows.count()}`);
    const k = a.locator('#reports tr.result[data-test-code="K"]');
    check((await k.getAttribute('class')).includes('flag-critical'), 'potassium row not flag-critical');
    const style = await k.evaluate((row) => {
      const s = getComputedStyle(row);
      return { color: s.color, background: s.backgroundColor, weight: s.fontWeight };
    });
    const [r, g, bl] = style.color.match(/\d+/g).map(Number);
    check(r > 120 && g < 60 && bl < 60, `potassium text not red: ${style.color}`);
    check(Number(style.weight) >= 700, `potassium not bold: ${style.weight}`);
    const flag = await k.locator('td.flag').innerText();
    check(flag.includes('HH') && flag.includes('Critical high'), `flag not written: ${flag}`);
    const normal = a.locator('#reports tr.result[data-test-code="WBC"]');
    check(!(await normal.getAttribute('class')).includes('flag-'), 'normal row highlighted');
    check((await normal.locator('td.flag').innerText()).includes('Normal'), 'N not written as Normal');
    const headers = await a.locator('#reports table.results thead th').allInnerTexts();
    check(headers.join('|') === 'Test|Result|Units|Reference range|Flag|Status|Received',
      `columns: ${headers.join('|')}`);
    const report = await a.locator('#reports section.report h4').first().innerText();
    check(report.includes('Complete Blood Count (CBC)') && report.includes('Final'), `report heading: ${report}`);
    await a.screenshot({ path: path.join(SHOTS, 'patient-view.png'), fullPage: true });
  });

  await step('acknowledge: banner gone for everyone; who and when stored', async () => {
    const critical = await api('GET', '/api/lab-results/critical');
    const k = critical.body.find((x) => x.test_code === 'K');
    check(k, 'no open potassium critical over REST');
    potassiumId = k.id;
    await a.locator(`#critical-list button.ack[data-result-id="${potassiumId}"]`).click();
    await a.locator('#critical-banner').waitFor({ state: 'hidden', timeout: 2000 });
    await b.locator('#critical-banner').waitFor({ state: 'hidden', timeout: 2000 });
    const stored = await api('GET', `/api/lab-results/${potassiumId}`);
    check(stored.body.acknowledged === true, 'not acknowledged in storage');
    check(stored.body.acknowledged_by === 'clinician', `acknowledged_by ${stored.body.acknowledged_by}`);
    check(Math.abs(Date.parse(stored.body.acknowledged_at) - Date.now()) < 60000,
      `acknowledged_at ${stored.body.acknowledged_at}`);
    await a.locator('#reports tr.result[data-test-code="K"] .ack-note', { hasText: 'Acknowledged by clinician' })
      .waitFor({ timeout: 3000 });
    check(await a.evaluate(() => document.activeElement && document.activeElement !== document.body),
      'focus lost after acknowledging');
  });

  await step('three more potassium results: the trend shows four points with the range shaded', async () => {
    sendOru(potassiumOru('K002', '20260222080000', '5.9', 'H'));
    sendOru(potassiumOru('K003', '20260223080000', '5.3', 'H'));
    sendOru(potassiumOru('K004', '20260224080000', '7.1', 'HH'));
    const points = a.locator('svg.trend-chart[data-test-code="K"] .point');
    await a.waitForFunction(() =>
      document.querySelectorAll('svg.trend-chart[data-test-code="K"] .point').length === 4, null,
    { timeout: 5000 });
    check(await points.count() === 4, `points: ${await points.count()}`);
    check(await a.locator('svg.trend-chart rect.reference-range').count() === 1, 'no shaded range');
    check(await a.locator('svg.trend-chart .point.flag-critical').count() === 2, 'critical points not marked');
    check(await a.locator('#reports tr.result').count() === 8, 'patient view not refreshed live');
    // H is yellow, not bold, and written; HH stays red.
    const high = a.locator('#reports tr.result[data-test-code="K"]', { hasText: '5.9' });
    const highStyle = await high.evaluate((row) => {
      const s = getComputedStyle(row);
      return { cls: row.className, background: s.backgroundColor, weight: s.fontWeight };
    });
    const [hr, hg, hb] = highStyle.background.match(/\d+/g).map(Number);
    check(highStyle.cls.includes('flag-abnormal') && hr > 230 && hg > 200 && hb < 210 && hb < hg,
      `the H row is not yellow: ${JSON.stringify(highStyle)}`);
    check(Number(highStyle.weight) < 700, `the H row is bold: ${highStyle.weight}`);
    const highFlag = await high.locator('td.flag').innerText();
    check(highFlag.includes('H') && /high/i.test(highFlag), `H not written: ${highFlag}`);
    check(await a.evaluate(() => window.e2eSameDocument === true), 'the page was reloaded');
    await a.locator('#critical-list li', { hasText: '7.1' }).waitFor({ timeout: 2000 });
    await a.screenshot({ path: path.join(SHOTS, 'trend.png'), fullPage: true });
  });

  await step('preliminary, corrected and lab comments are marked', async () => {
    sendOru([
      'MSH|^~\\&|LAB_LIS|REFERENCE_LAB|PMS_LAB|MPS_PMS|20260225090000||ORU^R01|ST001|P|2.5.1',
      'PID|1||12345^^^MPS_PMS^MR||Doe^Jane||19900315|F',
      'OBR|1|ORD-ST|FIL-ST|TSH^Thyroid Stimulating Hormone|||20260225090000|||||||||Dr. Smith||||||||P',
      'OBX|1|NM|TSH^Thyroid Stimulating Hormone||2.1|mIU/L|0.4-4.0|N|||P',
      'NTE|1|L|Specimen slightly hemolysed; repeat advised.',
      'OBX|2|NM|GLU^Glucose||98|mg/dL|70-99|N|||C',
      'NTE|1|L|Corrected: an earlier value was entered in error.',
    ].join('\n'));
    const tsh = a.locator('#reports tr.result[data-test-code="TSH"]');
    await tsh.waitFor({ timeout: 5000 });
    check((await tsh.innerText()).includes('Preliminary'), 'TSH not marked Preliminary');
    check((await a.locator('#reports tr.result[data-test-code="GLU"]').innerText()).includes('Corrected'),
      'GLU not marked Corrected');
    check((await a.locator('#reports tr.result[data-test-code="K"]').first().innerText()).includes('Final'),
      'K not marked Final');
    const comment = await a.locator(`#reports tr.comment-row`).first().innerText();
    check(comment.includes('Specimen slightly hemolysed'), `NTE not shown: ${comment}`);
    // Newest report first.
    const first = await a.locator('#reports section.report h4').first().innerText();
    check(first.includes('Thyroid Stimulating Hormone'), `newest report not first: ${first}`);
  });

  await step('order CBC + BMP (Stat): submit only when valid; pending -> sent -> resulted live', async () => {
    const submit = a.locator('#order-submit');
    check(await submit.isDisabled(), 'submit enabled with nothing chosen');
    // The guide's eight tests and three priorities are offered.
    const offered = await a.locator('#order-tests input[name="test"]').evaluateAll(
      (inputs) => inputs.map((i) => i.value));
    check(offered.join() === 'CBC,BMP,CMP,UA,TSH,HBA1C,LIPID,PT_INR', `tests offered: ${offered}`);
    const priorities = await a.getByLabel('Priority').locator('option').allInnerTexts();
    check(priorities.map((t) => t.trim()).join() === 'Routine,Stat,ASAP', `priorities: ${priorities}`);
    await a.getByRole('checkbox', { name: 'Complete Blood Count (CBC)' }).check();
    await a.getByRole('checkbox', { name: 'Basic Metabolic Panel (BMP)' }).check();
    check(await submit.isDisabled(), 'submit enabled without a provider');
    await a.getByLabel('Ordering provider').fill('Dr. Smith');
    await a.getByLabel('Priority').selectOption({ label: 'Stat' });
    check(await submit.isEnabled(), 'submit still disabled with tests and provider');
    await submit.click();
    const row = a.locator('#orders tr[data-order-id]').first();
    await row.waitFor();
    const id = await row.getAttribute('data-order-id');
    const placed = await api('GET', `/api/lab-orders/${id}`);
    check(placed.body.priority === 'S' && placed.body.test_codes.join() === 'CBC,BMP',
      `stored order: ${JSON.stringify(placed.body)}`);
    check((await row.innerText()).includes('Stat'), 'priority not shown');
    try {
      await a.waitForFunction((orderId) => {
        const r = document.querySelector(`#orders tr[data-order-id="${orderId}"]`);
        return r && ['sent', 'acknowledged'].includes(r.dataset.status);
      }, id, { timeout: 15000 });
    } catch {
      const received = fs.existsSync(LIS_RECEIVED) ? fs.readFileSync(LIS_RECEIVED, 'utf8') : '';
      const now = await api('GET', `/api/lab-orders/${id}`);
      throw new Error(
        `order ${id} did not reach "sent" within 15 s (status "${now.body.status}", attempts ` +
        `${now.body.attempts ?? '?'}); the fake LIS received ${received.split('MSH|').length - 1} ` +
        'message(s). MISSING: order dispatch to the LIS (issue 7: OrderDispatcher reading ' +
        'LIS_ENDPOINTS_FILE) is not in this build, or did not send.');
    }
    check(await a.evaluate(() => window.e2eSameDocument === true), 'the page was reloaded');
    const received = fs.readFileSync(LIS_RECEIVED, 'utf8');
    check(/ORM\^O01/.test(received) && /\nORC\|NW\|/.test(received), 'the LIS got no ORM^O01 with ORC NW');
    check((await a.locator('#order-status').innerText()).length > 0, 'no status announcement');
    // The LIS answers the CBC order with a final ORU echoing its placer
    // numbers a few seconds later: the row turns "resulted" without a reload.
    await a.waitForFunction((orderId) => {
      const r = document.querySelector(`#orders tr[data-order-id="${orderId}"]`);
      return r && r.dataset.status === 'resulted';
    }, id, { timeout: 20000 });
    check(await a.evaluate(() => window.e2eSameDocument === true), 'the page was reloaded');
    const resulted = await api('GET', `/api/lab-orders/${id}`);
    check(resulted.body.status === 'resulted' && resulted.body.results.length >= 2,
      `resulted order: ${JSON.stringify(resulted.body)}`);
    const rowText = await a.locator(`#orders tr[data-order-id="${id}"]`).innerText();
    check(/Resulted/.test(rowText) && !rowText.includes('Cancel'), `resulted row: ${rowText}`);
    await a.locator('#reports tr.result[data-test-code="WBC"]', { hasText: '8.25' })
      .waitFor({ timeout: 5000 });
  });

  await step('cancel an order not yet resulted', async () => {
    await a.getByRole('checkbox', { name: 'Urinalysis (UA)' }).check();
    await a.getByLabel('Ordering provider').fill('Dr. Smith');
    await a.locator('#order-submit').click();
    const row = a.locator('#orders tr[data-order-id]', { has: a.locator('td', { hasText: /^UA$/ }) });
    await row.waitFor();
    const id = await row.getAttribute('data-order-id');
    await row.getByRole('button', { name: `Cancel order ${id}` }).click();
    await a.locator(`#orders tr[data-order-id="${id}"][data-status="cancelled"]`).waitFor({ timeout: 5000 });
    const stored = await api('GET', `/api/lab-orders/${id}`);
    check(stored.body.status === 'cancelled', `stored status ${stored.body.status}`);
    check(await a.locator(`#orders tr[data-order-id="${id}"] button`).count() === 0,
      'a cancelled order still offers Cancel');
    // The README's picture: banner, results by report, trend, orders.
    await a.screenshot({ path: path.join(SHOTS, 'dashboard.png'), fullPage: true });
  });

  await step('a wrong token shows the sign-in again with a message', async () => {
    const c = await newPage();
    await signIn(c, 'lb_this-is-not-a-token');
    const error = c.locator('#sign-in-error');
    await error.waitFor();
    check((await error.innerText()).includes('not accepted'), `message: ${await error.innerText()}`);
    check(await c.getByLabel('API token').getAttribute('aria-invalid') === 'true', 'input not marked invalid');
    check(!(await c.locator('#dashboard-view').isVisible()), 'dashboard shown');
    await c.close();
  });

  await step('a revoked (expired) token shows the sign-in again with a message', async () => {
    const r = lab_bridge('token', 'revoke', 'nurse');
    check(r.status === 0, `token revoke: ${r.stderr}`);
    await b.waitForTimeout(1200);  // the registry re-reads its file at most once a second
    await b.getByLabel('PMS patient id or name').fill('12345');
    await b.getByLabel('PMS patient id or name').press('Enter');
    const error = b.locator('#sign-in-error');
    await error.waitFor({ timeout: 5000 });
    const text = await error.innerText();
    check(/session ended/i.test(text), `message: ${text}`);
    check(await b.evaluate(() => sessionStorage.getItem('labbridge.token')) === null, 'token kept');
    check(await b.getByLabel('API token').isVisible(), 'no sign-in form');
  });

  await step('keyboard only, labels, and a phone-width screen', async () => {
    const p = await newPage();
    await p.setViewportSize({ width: 390, height: 844 });
    await p.goto(`${BASE}/lab`);
    check(await p.evaluate(() => document.activeElement.id) === 'token', 'focus not on the token input');
    await p.keyboard.type(TOKEN);
    await p.keyboard.press('Enter');
    await p.waitForFunction(() => document.activeElement.id === 'patient-query', null, { timeout: 5000 });
    await p.keyboard.type('doe jane');
    await p.keyboard.press('Enter');
    await p.waitForFunction(() => document.activeElement.classList.contains('patient-match'));
    await p.keyboard.press('Enter');
    await p.waitForFunction(() => document.activeElement.id === 'patient-title');
    await p.locator('#reports tr.result').first().waitFor();
    for (const label of ['API token', 'PMS patient id or name', 'Ordering provider', 'Priority', 'Test']) {
      check(await p.getByLabel(label, { exact: true }).count() >= 1, `nothing labelled "${label}"`);
    }
    // Tab order reaches the order form's first test after the trend selector.
    await p.locator('#trend-test').focus();
    let reached = false;
    for (let i = 0; i < 5 && !reached; i++) {
      await p.keyboard.press('Tab');
      reached = await p.evaluate(() => document.activeElement.name === 'test');
    }
    check(reached, 'Tab from the trend does not reach the order tests');
    const overflow = await p.evaluate(() => {
      const wide = [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 &&
          !(e.closest('.table-wrap') && e.closest('.table-wrap') !== e))
        .map((e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${e.className?.baseVal ?? e.className}:${Math.round(e.getBoundingClientRect().right)}`);
      return { by: document.documentElement.scrollWidth - window.innerWidth, wide: wide.slice(0, 8) };
    });
    check(overflow.by <= 0, `page wider than the phone by ${overflow.by}px: ${overflow.wide.join(', ')}`);
    const ack = p.locator('#critical-list button.ack').first();
    const box = await ack.boundingBox();
    check(box && box.x >= 0 && box.x + box.width <= 390 && box.height >= 40,
      `Acknowledge not usable at phone width: ${JSON.stringify(box)}`);
    check(await p.locator('#announcer[aria-live="assertive"]').count() === 1, 'no assertive live region');
    await p.screenshot({ path: path.join(SHOTS, 'phone.png'), fullPage: true });
    await p.close();
  });

  await step('without the event stream the page falls back to polling', async () => {
    const p = await newPage();
    await p.route('**/api/events**', (route) => route.abort());
    await signIn(p, TOKEN);
    await p.locator('#live-status', { hasText: 'Checking every 5 s' }).waitFor({ timeout: 5000 });
    sendOru(potassiumOru('K005', '20260226080000', '2.4', 'LL'));
    await p.locator('#critical-list li', { hasText: '2.4' }).waitFor({ timeout: 8000 });
    check((await p.locator('#critical-list li', { hasText: '2.4' }).innerText()).includes('Critical low'),
      'LL not written');
    await p.close();
  });

  await step('validation and a server that is down give readable messages, never a blank page', async () => {
    await a.getByLabel('PMS patient id or name').fill('   ');
    await a.getByLabel('PMS patient id or name').press('Enter');
    check((await a.locator('#search-error').innerText()).includes('Enter a PMS patient id or a name'),
      'no validation message');
    process.kill(SERVER_PID, 'SIGTERM');
    for (let i = 0; i < 50; i++) {
      try { process.kill(SERVER_PID, 0); } catch { break; }
      await a.waitForTimeout(100);
    }
    await a.getByLabel('PMS patient id or name').fill('12345');
    await a.getByLabel('PMS patient id or name').press('Enter');
    const message = a.locator('#message');
    await message.waitFor({ timeout: 5000 });
    check((await message.innerText()).includes('Cannot reach lab-bridge'), `message: ${await message.innerText()}`);
    check(await a.locator('#dashboard-view').isVisible(), 'the dashboard vanished');
    await a.locator('#live-status:not(.is-live)').waitFor({ timeout: 5000 });
  });

  await step('no script errors in any page', async () => {
    check(pageErrors.length === 0, pageErrors.join('; '));
  });
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}

console.log(failures === 0 ? 'ALL PASS' : `${failures} step(s) failed`);
console.log(`screenshots in ${SHOTS}`);
process.exit(failures === 0 ? 0 : 1);
