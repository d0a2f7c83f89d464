// Plays one media URL in Debian's Chromium (headless, through
// playwright-core) with mpegts.js or flv.js, seeks, and prints what
// happened as JSON on stdout. tests/browser_flv.rs runs it and judges.
//
//   node tests/browser/seek.mjs --page http://HOST/_web/harness.html \
//        --media http://HOST/media/long.yamdi.flv --lib mpegts --seek-type range \
//        [--seeks 0.6,0.3] [--timeout-ms 12000] [--watch-ms 1500] \
//        [--chromium /usr/bin/chromium] [--screenshot out.png] [--stash on|off]
//
// --stash on keeps the players' default IO stash buffer (off by default:
// see web/player.js).
//
// For each seek fraction f the page seeks to f × duration and reports the
// requests the page made after the seek (URL, Range, the byte offset asked
// for), the times from the seek to `seeked`, `playing` and currentTime
// moving past the target, currentTime samples, `ended` and player errors.
// A seek that does not play again within the timeout ends the run.
// Exit status: 0 when a report was printed (whatever it says), 2 on usage
// errors, 1 when the browser or page could not be driven at all.

import { collectConsole, drive } from './chromium.mjs';

function parseArgs(argv) {
  const opts = {
    seeks: [0.6],
    timeoutMs: 12000,
    watchMs: 1500,
    startTimeoutMs: 15000,
    chromium: '/usr/bin/chromium',
    screenshot: null,
    stash: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${name} needs a value`);
    i++;
    switch (name) {
      case '--page': opts.page = value; break;
      case '--media': opts.media = value; break;
      case '--lib': opts.lib = value; break;
      case '--seek-type': opts.seekType = value; break;
      case '--seeks': opts.seeks = value.split(',').map(Number); break;
      case '--timeout-ms': opts.timeoutMs = Number(value); break;
      case '--watch-ms': opts.watchMs = Number(value); break;
      case '--start-timeout-ms': opts.startTimeoutMs = Number(value); break;
      case '--chromium': opts.chromium = value; break;
      case '--screenshot': opts.screenshot = value; break;
      case '--stash': opts.stash = value === 'on'; break;
      default: throw new Error(`unknown option ${name}`);
    }
  }
  for (const need of ['page', 'media', 'lib', 'seekType'])
    if (!opts[need]) throw new Error(`--${need.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} is required`);
  if (!['mpegts', 'flvjs'].includes(opts.lib)) throw new Error('--lib: mpegts or flvjs');
  if (!['range', 'param'].includes(opts.seekType)) throw new Error('--seek-type: range or param');
  if (opts.seeks.some((f) => !(f > 0 && f < 1))) throw new Error('--seeks: fractions between 0 and 1');
  return opts;
}

async function playAndSeek(browser, opts) {
  const report = {
    media: opts.media,
    lib: opts.lib,
    seekType: opts.seekType,
    browser: browser.version(),
    start: null,
    duration: null,
    seeks: [],
    state: null,
    console: [],
    pageErrors: [],
  };
  const page = await browser.newPage({ viewport: { width: 480, height: 320 } });
  collectConsole(page, report);
  await page.goto(opts.page, { waitUntil: 'load' });
  await page.waitForFunction(() => window.harness !== undefined, null, { timeout: 10000, polling: 100 });
  await page.evaluate((o) => window.harness.start(o), {
    src: opts.media,
    lib: opts.lib,
    seekType: opts.seekType,
    stashBuffer: opts.stash,
  });
  report.start = await page.evaluate(([t]) => window.harness.waitPlaying(1.0, t), [opts.startTimeoutMs]);
  if (report.start.ok) {
    report.duration = await page.evaluate(() => window.harness.duration());
    for (const fraction of opts.seeks) {
      const target = Math.round(fraction * report.duration * 10) / 10;
      const result = await page.evaluate(
        ([t, o]) => window.harness.seekAndWatch(t, o),
        [target, { timeoutMs: opts.timeoutMs, watchMs: opts.watchMs }]
      );
      result.fraction = fraction;
      report.seeks.push(result);
      if (result.timedOut || result.errors.length) break;
    }
  }
  report.state = await page.evaluate(() => window.harness.state());
  if (opts.screenshot) await page.screenshot({ path: opts.screenshot });
  return report;
}

drive('seek.mjs', parseArgs, playAndSeek);
