/**
 * The status page on the admin port (`GET /`), in a real headless chromium against a real bulb and real
 * backends. Screenshots of every test go to `BULB_SCREENSHOT_DIR` (or a temp dir, printed); with
 * `BULB_DOCS_SCREENSHOT=docs/status-page.png` the first test also writes the picture the docs show.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { rm, writeFile } from 'node:fs/promises';
import type { Locator, Page } from 'playwright-core';
import { startBackends, type TestBackend } from '../helpers/backend.js';
import { startBulb, type RunningBulb } from '../helpers/bulb.js';
import { openBrowser, screenshots, type BrowserPage } from '../helpers/browser.js';
import { request } from '../helpers/http.js';
import { answers } from '../helpers/tally.js';
import { backendFile, tmpDir, writeAtomic } from '../helpers/tmpdir.js';
import { waitFor } from '../helpers/wait-for.js';

const TOKEN = 'status-page-token-0123456789';
const idOf = (b: TestBackend) => `${b.host}:${b.port}`;
const row = (page: Page, b: TestBackend) => page.locator(`#backends tbody tr[data-backend="${idOf(b)}"]`);
/** Cells by column: 0 backend, 1 from, 2 state, 3 health, 4 weight, 5 in flight, 6 req/s, 7 errors, 8 latency, 9 chart, 10 last error, 11 action. */
const cell = (r: Locator, i: number) => r.locator('td').nth(i);

const traffic = (bulb: RunningBulb, n: number) => answers(bulb, n, { path: '/' });

/** Waits until `locator`'s text satisfies `pred` (the page updates once a second). */
async function waitForText(locator: Locator, pred: (text: string) => boolean, what: string, timeoutMs = 20_000): Promise<string> {
  let text = '';
  await waitFor(
    async () => pred((text = ((await locator.count()) > 0 ? await locator.first().textContent() : '') ?? '')),
    timeoutMs,
    () => `${what} (text now ${JSON.stringify(text)})`,
    100,
  );
  return text;
}

/** Everything the page fetched came from bulb's admin origin (or is an inline data: URL). */
function assertSameOrigin(b: BrowserPage, bulb: RunningBulb): void {
  const origin = new URL(bulb.adminUrl).origin;
  const foreign = b.requests.filter((u) => !u.startsWith('data:') && new URL(u).origin !== origin);
  assert.deepEqual(foreign, [], 'the page requested nothing from other origins');
  assert.ok(b.requests.some((u) => u.startsWith(`${origin}/status?`)), 'the page polls /status');
}

test('the page and its files answer without the token under a strict CSP; pool data still needs it', async (t) => {
  const [a] = await startBackends(t, 'a');
  const bulb = await startBulb(t, ['--backend', a.url, '--admin-token', TOKEN]);

  const html = await request(`${bulb.adminUrl}/`);
  assert.equal(html.status, 200);
  assert.match(String(html.headers['content-type']), /^text\/html/);
  const csp = String(html.headers['content-security-policy']);
  for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'"]) {
    assert.ok(csp.includes(directive), `CSP has ${directive}: ${csp}`);
  }
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:|\*/, 'no inline code and no other origin allowed');
  assert.equal(html.headers['x-content-type-options'], 'nosniff');
  // No inline script or style: every <script> has a src, no style attribute or element.
  assert.doesNotMatch(html.body, /<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=/i);
  assert.doesNotMatch(html.body, /https?:\/\/(?!www\.w3\.org)/, 'no absolute URL to anywhere');
  assert.match(html.body, /data-token-required="true"/, 'the page knows to ask for the token first');
  for (const [path, type] of [['/ui/app.js', /^text\/javascript/], ['/ui/app.css', /^text\/css/]] as const) {
    const r = await request(`${bulb.adminUrl}${path}`);
    assert.equal(r.status, 200, path);
    assert.match(String(r.headers['content-type']), type, path);
    assert.ok(r.body.length > 500, `${path} has content`);
  }
  const head = await request(`${bulb.adminUrl}/`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal((await request(`${bulb.adminUrl}/`, { method: 'POST' })).status, 405);

  for (const path of ['/status', '/backends', '/sources', '/metrics', '/favicon.ico', '/ui/other.js']) {
    assert.equal((await request(`${bulb.adminUrl}${path}`)).status, 401, `${path} needs the token`);
  }
  const status = await request(`${bulb.adminUrl}/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(status.status, 200);
  const body = JSON.parse(status.body) as { ready: boolean; strategy: string; version: string; workers: { id: string; pid: number }[]; backends: { id: string }[] };
  assert.equal(body.ready, true);
  assert.equal(body.strategy, 'round-robin');
  assert.match(body.version, /^\d+\.\d+\.\d+/);
  assert.deepEqual(body.backends.map((b) => b.id), [idOf(a)]);
  assert.equal(body.workers.length, 1);
  assert.equal(body.workers[0].pid, bulb.pid);
});

test('the page lists the pool and follows it live: a dropped file appears, a bad one shows its reason, a deleted one goes', async (t) => {
  const [a, b] = await startBackends(t, 'a', 'b');
  const dir = await tmpDir(t);
  await writeFile(join(dir, 'a.json'), backendFile(a.url, { weight: 3 }));
  const bulb = await startBulb(t, ['--watch-dir', dir, '--backend', b.url, '--strategy', 'least-connections']);
  const browser = await openBrowser(t);
  const { page } = browser;
  await page.goto(`${bulb.adminUrl}/`);

  await row(page, a).waitFor();
  await waitForText(page.locator('#s-ready'), (s) => s === 'ready', 'readiness');
  assert.equal(await page.locator('#s-strategy').textContent(), 'least-connections');
  assert.equal(await page.locator('#s-panic').textContent(), 'off');
  assert.match((await page.locator('#s-version').textContent()) ?? '', /^\d+\.\d+\.\d+/);
  assert.match(await cell(row(page, a), 0).innerText(), new RegExp(`${idOf(a)}\\s+${a.url}`));
  assert.match(await cell(row(page, a), 1).innerText(), new RegExp(`dir:${dir}\\s+${join(dir, 'a.json')}`));
  assert.equal(await cell(row(page, b), 1).innerText(), 'static\n--backend');
  assert.equal(await cell(row(page, a), 2).textContent(), 'active');
  assert.equal(await cell(row(page, a), 3).textContent(), 'healthy');
  assert.equal(await cell(row(page, a), 4).textContent(), '3');
  const sources = page.locator('#sources tbody tr');
  assert.equal(await sources.count(), 2);
  assert.match((await page.locator(`#sources tr[data-source="dir:${dir}"]`).textContent()) ?? '', /directory/);

  // Traffic shows as a rate, a chart and a request count in the worker row.
  const sent = traffic(bulb, 60);
  await waitForText(cell(row(page, a), 6), (s) => Number(s) > 0, 'a positive request rate for a');
  await sent;
  await waitFor(async () => (await row(page, a).locator('svg.spark polyline').count()) === 1, 20_000, 'a sparkline for a');
  assert.equal(await cell(row(page, a), 7).textContent(), '0.0%', 'no errors');
  await waitForText(page.locator('#workers tbody tr td').nth(2), (s) => Number(s.replace(/,/g, '')) >= 60, 'the worker row counts the requests');
  await waitForText(page.locator('#workers tbody tr td').nth(4), (s) => /ms \/ .* ms \/ .* ms/.test(s), 'event-loop lag in the worker row');

  // A new file appears without a reload.
  const [c] = await startBackends(t, 'c');
  await writeAtomic(join(dir, 'c.json'), backendFile(c.url));
  await row(page, c).waitFor({ timeout: 20_000 });
  // A bad file shows its name, pointer and reason, and no backend.
  await writeAtomic(join(dir, 'broken.json'), backendFile('http://127.0.0.9:1', { weight: 0 }));
  const problems = page.locator(`#sources tr[data-source="dir:${dir}"] .problems`);
  const problem = await waitForText(problems, (s) => s.includes('broken.json'), 'the bad file in the source row');
  assert.match(problem, new RegExp(`${join(dir, 'broken.json')} /weight: weight must be an integer >= 1`));
  assert.equal(await page.locator('#backends tbody tr[data-backend="127.0.0.9:1"]').count(), 0);
  await browser.screenshot('status-page-live');
  if (process.env['BULB_DOCS_SCREENSHOT']) await page.screenshot({ path: process.env['BULB_DOCS_SCREENSHOT'], fullPage: true });

  // The filter box narrows the table; the sort buttons order it.
  await page.getByLabel('Filter').fill(c.url);
  await waitFor(async () => (await page.locator('#backends tbody tr').count()) === 1, 10_000, 'only c left by the filter');
  assert.equal(await page.locator('#backends tbody tr').getAttribute('data-backend'), idOf(c));
  await page.getByLabel('Filter').fill('');
  await page.locator('#backends th[data-sort="id"] button').click();
  await waitFor(async () => (await page.locator('#backends th[data-sort="id"]').getAttribute('aria-sort')) === 'descending', 5000, 'descending sort');
  const ids = await page.locator('#backends tbody tr').evaluateAll((rows: { getAttribute(name: string): string | null }[]) => rows.map((r) => r.getAttribute('data-backend')));
  assert.deepEqual(ids, [idOf(a), idOf(b), idOf(c)].sort().reverse(), 'sorted by id, descending');

  // A deleted file goes without a reload.
  await rm(join(dir, 'a.json'));
  await row(page, a).waitFor({ state: 'detached', timeout: 20_000 });
  assert.equal(await page.locator('#backends tbody tr').count(), 2);

  assertSameOrigin(browser, bulb);
  assert.deepEqual(browser.problems, [], 'no console errors or warnings');
  t.diagnostic(`screenshots in ${await screenshots()}`);
});

test('the drain button takes a backend out of rotation and undrain brings it back', async (t) => {
  const [a, b] = await startBackends(t, 'a', 'b');
  const bulb = await startBulb(t, ['--backend', a.url, '--backend', b.url]);
  const browser = await openBrowser(t);
  const { page } = browser;
  await page.goto(`${bulb.adminUrl}/`);
  await row(page, a).waitFor();

  await row(page, a).getByRole('button', { name: `Drain ${idOf(a)}` }).click();
  await waitForText(cell(row(page, a), 2), (s) => s === 'drained by operator', 'a drained by operator');
  assert.equal(await page.locator('#s-routable').textContent(), '1 of 2');
  const before = a.seen.length;
  const served = await traffic(bulb, 10);
  assert.deepEqual(served, Array(10).fill('b'), 'every request goes to b while a is drained');
  assert.equal(a.seen.length, before);
  await browser.screenshot('status-page-drained');

  await row(page, a).getByRole('button', { name: `Undrain ${idOf(a)}` }).click();
  await waitForText(cell(row(page, a), 2), (s) => s === 'active', 'a active again');
  const after = await traffic(bulb, 6);
  assert.ok(after.includes('a'), `a takes requests again: ${after.join(',')}`);

  assertSameOrigin(browser, bulb);
  assert.deepEqual(browser.problems, [], 'no console errors or warnings');
});

test('with --admin-token the page asks for the token, refuses a wrong one and works with the right one', async (t) => {
  const [a, b] = await startBackends(t, 'a', 'b');
  const bulb = await startBulb(t, ['--backend', a.url, '--backend', b.url, '--admin-token', TOKEN]);
  const browser = await openBrowser(t);
  const { page, context } = browser;
  await page.goto(`${bulb.adminUrl}/`);

  const field = page.getByLabel('Admin token');
  await field.waitFor();
  assert.equal(await field.getAttribute('type'), 'password');
  assert.equal(await page.locator('#backends tbody tr').count(), 0, 'no pool data before the token');
  assert.ok(!browser.requests.some((u) => u.includes('/status')), 'the page asks first instead of failing a request');
  await browser.screenshot('status-page-token');

  await field.fill('not-the-token');
  await page.getByRole('button', { name: 'Use token' }).click();
  await waitForText(page.locator('#token-message'), (s) => s.startsWith('Wrong admin token'), 'the wrong-token message');
  assert.equal(await page.locator('#token-form').isVisible(), true);
  assert.equal(await page.locator('#backends tbody tr').count(), 0);
  await browser.screenshot('status-page-wrong-token');

  await field.fill(TOKEN);
  await page.getByRole('button', { name: 'Use token' }).click();
  await row(page, a).waitFor();
  assert.equal(await page.locator('#token-form').isVisible(), false);
  // Drain and undrain carry the token too.
  await row(page, b).getByRole('button', { name: `Drain ${idOf(b)}` }).click();
  await waitForText(cell(row(page, b), 2), (s) => s === 'drained by operator', 'b drained with the token');
  assert.deepEqual(await traffic(bulb, 4), ['a', 'a', 'a', 'a']);

  // Kept for the tab's session: a reload needs no new token. Never in a URL or a cookie.
  await page.reload();
  await row(page, a).waitFor();
  assert.equal(await page.locator('#token-form').isVisible(), false);
  assert.equal(await page.evaluate('sessionStorage.getItem("bulb.adminToken")'), TOKEN);
  assert.equal(await page.evaluate('localStorage.length'), 0);
  assert.deepEqual(await context.cookies(), []);
  assert.ok(!browser.requests.some((u) => u.includes(TOKEN) || u.includes('not-the-token')), 'the token is never in a URL');

  assertSameOrigin(browser, bulb);
  // The one wrong token is the only thing the console may complain about: chromium logs the 401 it got.
  const unexpected = browser.problems.filter((p) => !p.includes('status of 401'));
  assert.deepEqual(unexpected, [], 'no console errors but the refused token');
  assert.equal(browser.problems.length, 1, `exactly one 401: ${browser.problems.join('; ')}`);
});
