// What the Chromium drivers (seek.mjs, mp4.mjs) share: their exit statuses,
// Debian's Chromium launched for media, and a page's console collected.

import { chromium } from '../../web/node_modules/playwright-core/index.mjs';

/** Runs a driver: its options from `parseArgs` (which throws on a usage
 *  error: exit 2), then `run(browser, opts)` in a headless Chromium (at
 *  `opts.chromium`), whose report is printed as one JSON line (exit 0,
 *  whatever it says); exit 1 when the browser or page cannot be driven. */
export async function drive(name, parseArgs, run) {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${name}: ${e.message}\n`);
    process.exit(2);
  }
  try {
    const browser = await chromium.launch({
      executablePath: opts.chromium,
      headless: true,
      args: [
        '--no-sandbox',
        '--autoplay-policy=no-user-gesture-required',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    let report;
    try {
      report = await run(browser, opts);
    } finally {
      await browser.close();
    }
    process.stdout.write(JSON.stringify(report) + '\n');
  } catch (e) {
    process.stderr.write(`${name}: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
  }
}

/** Keeps the page's console errors and warnings in `report.console` and
 *  its uncaught exceptions in `report.pageErrors`. */
export function collectConsole(page, report) {
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') report.console.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => report.pageErrors.push(String(e)));
}
