import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { tmpDir } from './tmpdir.js';

/** Debian's chromium (`apt-get install chromium`; .ci/install-deps.sh installs it). */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * The machine has no internet: without these, chromium keeps trying to reach Google's services (component
 * updates, sync, QUIC probes) and floods the log with refused connections.
 */
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface BrowserPage {
  readonly page: Page;
  readonly context: BrowserContext;
  /** Every console message of type error or warning, and every uncaught exception, as text. */
  readonly problems: string[];
  /** Every URL the page requested, in order. */
  readonly requests: string[];
  /** Saves a full-page PNG into this test's screenshot directory and returns its path. */
  screenshot(name: string): Promise<string>;
}

/** Where screenshots go: `BULB_SCREENSHOT_DIR` if set (CI keeps them), else a temp dir kept after the run. */
let screenshotDir: Promise<string> | undefined;
export function screenshots(): Promise<string> {
  screenshotDir ??= process.env['BULB_SCREENSHOT_DIR'] ? Promise.resolve(process.env['BULB_SCREENSHOT_DIR']) : mkdtemp(join(tmpdir(), 'bulb-screenshots-'));
  return screenshotDir;
}

/**
 * A real headless chromium with a fresh profile (its own `--user-data-dir`, removed after the test), closed
 * when the test ends. Console errors, page errors and requests are recorded for the test to assert on.
 */
export async function openBrowser(t: TestContext, opts: { width?: number; height?: number } = {}): Promise<BrowserPage> {
  const profile = await tmpDir(t, 'bulb-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: opts.width ?? 1400, height: opts.height ?? 800 },
    timeout: 60_000,
  });
  t.after(() => context.close());
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30_000);
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`uncaught: ${err.message}`));
  page.on('request', (r) => requests.push(r.url()));
  return {
    page,
    context,
    problems,
    requests,
    screenshot: async (name) => {
      const path = join(await screenshots(), `${name}.png`);
      await page.screenshot({ path, fullPage: true });
      return path;
    },
  };
}
