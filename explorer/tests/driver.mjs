// A headless Chromium driven by playwright-core, for the Python tests and bench/explorer: one JSON
// command a line on stdin, one JSON answer a line on stdout (tests/support/browser.py speaks it).
//
//   {"op": "open", "url": U, "ready": true}   load U; with ready, wait for <html data-ready=PATH>
//   {"op": "go", "path": P}                   in-app navigation (history.pushState), then wait ready
//   {"op": "wait", "selector": S}             wait until S is in the page
//   {"op": "eval", "js": EXPR}                the value of a JavaScript expression in the page
//   {"op": "click", "selector": S}
//   {"op": "fill", "selector": S, "text": T, "enter": bool}   type into a field (and press Enter)
//   {"op": "screenshot", "path": F, "full": bool, "clip": {x, y, width, height}}
//   {"op": "viewport", "width": W, "height": H}
//   {"op": "messages"}                        console errors and warnings, page errors, failed
//                                             requests since the last call (then cleared)
//   {"op": "close"}
//
// The browser is Debian's chromium (CHROMIUM or /usr/bin/chromium), started with the flags that
// keep it off the network it has no business with, on a fresh profile.

import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const TIMEOUT = Number(process.env.EXPLORER_TIMEOUT_MS ?? 15000);
const profile = mkdtempSync(join(tmpdir(), 'explorer-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1360, height: 900 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
const page = context.pages()[0] ?? await context.newPage();
page.setDefaultTimeout(TIMEOUT);
let messages = [];
page.on('console', (m) => {
  if (m.type() === 'error' || m.type() === 'warning') messages.push({ kind: m.type(), text: m.text(), url: m.location()?.url ?? '' });
});
page.on('pageerror', (e) => messages.push({ kind: 'pageerror', text: String(e?.stack ?? e) }));
page.on('requestfailed', (r) => {
  // A navigation cancels the old page's requests still in flight (net::ERR_ABORTED): no fault.
  if (r.failure()?.errorText === 'net::ERR_ABORTED') return;
  messages.push({ kind: 'requestfailed', text: `${r.method()} ${r.url()}: ${r.failure()?.errorText}` });
});

async function waitReady(path) {
  await page.waitForFunction((p) => document.documentElement.dataset.ready === p, path, { timeout: TIMEOUT });
  return page.evaluate((p) => (window.__explorerReady ?? []).filter((r) => r.path === p).map((r) => r.ms)[0] ?? null, path);
}

async function run(cmd) {
  switch (cmd.op) {
    case 'open': {
      const started = Date.now();
      await page.goto(cmd.url, { waitUntil: 'domcontentloaded' });
      const readyMs = cmd.ready ? await waitReady(new URL(cmd.url).pathname) : null;
      return { readyMs, wallMs: Date.now() - started };
    }
    case 'go': {
      const started = await page.evaluate(() => performance.now());
      await page.evaluate((p) => {
        window.history.pushState({}, '', p);
        window.dispatchEvent(new Event('explorer:navigate'));
      }, cmd.path);
      const readyAt = await page.waitForFunction((p) => document.documentElement.dataset.ready === new URL(p, location.origin).pathname
        && performance.now(), cmd.path, { timeout: TIMEOUT }).then((h) => h.jsonValue());
      return { readyMs: readyAt - started };
    }
    case 'wait':
      await page.waitForSelector(cmd.selector, { timeout: cmd.timeout ?? TIMEOUT, state: cmd.state ?? 'attached' });
      return {};
    case 'eval':
      return { value: await page.evaluate(cmd.js) };
    case 'click':
      await page.click(cmd.selector);
      return {};
    case 'fill':
      await page.fill(cmd.selector, cmd.text);
      if (cmd.enter) await page.press(cmd.selector, 'Enter');
      return {};
    case 'screenshot':
      await page.screenshot({ path: cmd.path, fullPage: Boolean(cmd.full), ...(cmd.clip ? { clip: cmd.clip } : {}) });
      return {};
    case 'viewport':
      await page.setViewportSize({ width: cmd.width, height: cmd.height });
      return {};
    case 'messages': {
      const out = messages;
      messages = [];
      return { messages: out };
    }
    case 'close':
      await context.close();
      rmSync(profile, { recursive: true, force: true });
      return { closed: true };
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

const lines = createInterface({ input: process.stdin });
process.stdout.write(`${JSON.stringify({ ready: true, version: context.browser()?.version() ?? null })}\n`);
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    answer = { ok: true, ...(await run(JSON.parse(line))) };
  } catch (e) {
    answer = { ok: false, error: String(e?.message ?? e) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
  if (answer.closed) break;
}
process.exit(0);
