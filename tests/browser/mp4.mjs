// Plays MP4 cuts (`movie.mp4?start=S[&end=E]`) in Debian's Chromium
// (headless, through playwright-core) with the browser's own <video>, muted,
// and prints what happened as JSON on stdout. tests/browser_mp4.rs runs it
// and judges. The element loads paused on its first frame, which is drawn
// then (a playing video may already show a later one when a loaded machine
// gets to the drawing), and play() starts it at once, as autoplay would.
//
//   node tests/browser/mp4.mjs --cases cases.json [--chromium /usr/bin/chromium]
//
// cases.json: [{ "id", "page", "media", "kind", "target"?, "parallel"? }]
//   page    a same-origin HTML page of the host (only its origin matters:
//           the test page is written over it, so the canvas is not tainted)
//   media   the cut's absolute URL
//   kind    'seek': play, then seek to `target` s of the cut and watch;
//           'end':  play to the end (`ended`);
//           'play': play past 1 s
// Cases marked `parallel` run together in their own pages first (they only
// watch), then the others one after another (their latencies are timed).
//
// Every case reports the first frame presented (requestVideoFrameCallback,
// paused: its mediaTime and the frame drawn to a canvas at the video's size,
// averaged over BLOCK×BLOCK pixel blocks, RGB), the events with their times,
// the media requests Chromium made (Range header, status), `video.error`
// and console errors. A 'seek' case also reports `buffered` before the
// seek, the first frame presented after it (same form), the times to
// `seeked`, `playing` and currentTime passing the target, and currentTime
// samples.
// Exit status: 0 when a report was printed (whatever it says), 2 on usage
// errors, 1 when the browser could not be driven at all.

import { readFileSync } from 'node:fs';
import { collectConsole, drive } from './chromium.mjs';

/** Side of the pixel blocks frames are averaged over (tests/browser_mp4.rs
 *  averages the reference frames the same way). */
const BLOCK = 6;

function parseArgs(argv) {
  const opts = {
    chromium: '/usr/bin/chromium',
    startTimeoutMs: 20000,
    seekTimeoutMs: 12000,
    endTimeoutMs: 40000,
    watchMs: 1500,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${name} needs a value`);
    switch (name) {
      case '--cases': opts.cases = JSON.parse(readFileSync(value, 'utf8')); break;
      case '--chromium': opts.chromium = value; break;
      case '--start-timeout-ms': opts.startTimeoutMs = Number(value); break;
      case '--seek-timeout-ms': opts.seekTimeoutMs = Number(value); break;
      case '--end-timeout-ms': opts.endTimeoutMs = Number(value); break;
      case '--watch-ms': opts.watchMs = Number(value); break;
      default: throw new Error(`unknown option ${name}`);
    }
  }
  if (!Array.isArray(opts.cases)) throw new Error('--cases FILE is required');
  for (const c of opts.cases) {
    if (!c.id || !c.page || !c.media || !['seek', 'end', 'play'].includes(c.kind))
      throw new Error(`bad case ${JSON.stringify(c)}`);
    if (c.kind === 'seek' && !(c.target > 0)) throw new Error(`case ${c.id}: target missing`);
  }
  return opts;
}

/** The test page: one <video> as a page author writes it, and `window.probe`,
 *  which records what the element does. */
function pageHtml(media) {
  const src = JSON.stringify(media).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>MP4 cut</title></head>
<body>
<video id="v" muted preload="auto" playsinline width="426" height="240"></video>
<script>
const BLOCK = ${BLOCK};
const v = document.getElementById('v');
const t0 = performance.now();
const ms = () => Math.round(performance.now() - t0);
const r3 = (x) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null);
const probe = (window.probe = { events: [], errors: [], frames: {}, firstPlayingMs: null, endedMs: null, seek: null });

function ranges(tr) {
  const out = [];
  for (let i = 0; i < tr.length; i++) out.push([r3(tr.start(i)), r3(tr.end(i))]);
  return out;
}

for (const type of ['loadedmetadata', 'loadeddata', 'canplay', 'playing', 'waiting', 'seeking', 'seeked', 'ended', 'error', 'stalled', 'durationchange']) {
  v.addEventListener(type, () => {
    const at = ms();
    probe.events.push([at, type, r3(v.currentTime)]);
    const s = probe.seek;
    if (type === 'playing') {
      if (probe.firstPlayingMs === null) probe.firstPlayingMs = at;
      if (s && s.playingMs === null) s.playingMs = at - s.atMs;
    }
    if (type === 'seeked' && s && s.seekedMs === null) {
      s.seekedMs = at - s.atMs;
      s.seekedAt = r3(v.currentTime);
    }
    if (type === 'ended' && probe.endedMs === null) probe.endedMs = at;
    if (type === 'error') {
      const e = v.error;
      probe.errors.push(e ? 'MediaError ' + e.code + ': ' + e.message : 'error event without video.error');
    }
  });
}

/** The frame drawn at the video's size, averaged over BLOCK×BLOCK blocks. */
function blocks() {
  const w = v.videoWidth, h = v.videoHeight;
  const canvas = document.createElement('canvas');
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(v, 0, 0, w, h);
  const data = ctx.getImageData(0, 0, w, h).data;
  const bw = Math.floor(w / BLOCK), bh = Math.floor(h / BLOCK);
  const out = [];
  for (let by = 0; by < bh; by++)
    for (let bx = 0; bx < bw; bx++)
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let y = by * BLOCK; y < by * BLOCK + BLOCK; y++)
          for (let x = bx * BLOCK; x < bx * BLOCK + BLOCK; x++) sum += data[(y * w + x) * 4 + c];
        out.push(Math.round((sum / (BLOCK * BLOCK)) * 100) / 100);
      }
  return { width: w, height: h, block: BLOCK, pixels: out };
}

/** Captures the first frame presented whose media time is at least \`from\`
 *  (earlier ones, still on their way to the screen, are listed), then runs
 *  \`then\`. */
probe.grab = (label, from, then) => {
  const skipped = [];
  const onFrame = (now, meta) => {
    if (meta.mediaTime < from - 0.001) {
      skipped.push(r3(meta.mediaTime));
      v.requestVideoFrameCallback(onFrame);
      return;
    }
    let frame;
    try {
      frame = blocks();
    } catch (e) {
      frame = { error: String(e) };
    }
    probe.frames[label] = { atMs: ms(), mediaTime: r3(meta.mediaTime), currentTime: r3(v.currentTime), presentedFrames: meta.presentedFrames, skipped, ...frame };
    if (then) then();
  };
  v.requestVideoFrameCallback(onFrame);
};
probe.grab('first', 0, () => {
  v.play().catch((e) => probe.errors.push('play(): ' + e));
});

probe.state = () => ({
  currentTime: r3(v.currentTime),
  duration: r3(v.duration),
  readyState: v.readyState,
  networkState: v.networkState,
  paused: v.paused,
  seeking: v.seeking,
  ended: v.ended,
  buffered: ranges(v.buffered),
  error: v.error ? v.error.code + ': ' + v.error.message : null,
  atMs: ms(),
});

const sleep = (t) => new Promise((r) => setTimeout(r, t));
const moving = (min) => !v.paused && !v.seeking && v.readyState >= 3 && v.currentTime > min;

/** Resolves once the element plays past \`min\` s (or at the timeout). */
probe.waitPlaying = async (min, timeoutMs) => {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline && !probe.errors.length) {
    if (moving(min)) return { ok: true, ms: ms(), ...probe.state() };
    await sleep(25);
  }
  return { ok: false, ms: ms(), ...probe.state() };
};

/** Resolves once \`ended\` has fired (or at the timeout). */
probe.waitEnded = async (timeoutMs) => {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline && !probe.errors.length && probe.endedMs === null) await sleep(50);
  return { ok: probe.endedMs !== null, endedMs: probe.endedMs, ...probe.state() };
};

/** Seeks to \`target\` and watches until currentTime passes it by 0.1 s
 *  while playing (or the timeout), then \`watchMs\` more. */
probe.seekAndWatch = async (target, timeoutMs, watchMs) => {
  const bufferedBefore = ranges(v.buffered);
  const s = (probe.seek = {
    target,
    atMs: ms(),
    bufferedBefore,
    targetBuffered: bufferedBefore.some(([a, b]) => target >= a && target < b),
    currentTimeBefore: r3(v.currentTime),
    seekedMs: null,
    seekedAt: null,
    playingMs: null,
    advanceMs: null,
    landedAt: null,
    samples: [],
  });
  const at = performance.now();
  probe.grab('seek', target - 0.05);
  v.currentTime = target;
  let watchUntil = null;
  // Every animation frame: timeupdate comes only every 250 ms or so.
  let lastSample = -1e9;
  for (;;) {
    const now = performance.now();
    if (s.advanceMs === null && moving(target + 0.1)) {
      s.advanceMs = Math.round(now - at);
      s.landedAt = r3(v.currentTime);
      watchUntil = now + watchMs;
    }
    if (now - lastSample >= 200) {
      s.samples.push([Math.round(now - at), r3(v.currentTime), v.readyState, v.paused, v.seeking]);
      lastSample = now;
    }
    if (watchUntil !== null && now >= watchUntil) break;
    if (watchUntil === null && now - at >= timeoutMs) break;
    if (probe.errors.length) break;
    await new Promise((r) => requestAnimationFrame(r));
  }
  s.samples.push([Math.round(performance.now() - at), r3(v.currentTime), v.readyState, v.paused, v.seeking]);
  s.bufferedAfter = ranges(v.buffered);
  s.timedOut = s.advanceMs === null;
  return s;
};

v.src = ${src};
</script>
</body></html>`;
}

async function runCase(browser, c, opts) {
  const report = { id: c.id, kind: c.kind, media: c.media, requests: [], console: [], pageErrors: [] };
  const context = await browser.newContext({ viewport: { width: 640, height: 360 } });
  const page = await context.newPage();
  const started = Date.now();
  const mediaPath = new URL(c.media).pathname;
  const byRequest = new Map();
  page.on('request', (r) => {
    if (new URL(r.url()).pathname !== mediaPath) return;
    const entry = { atMs: Date.now() - started, url: r.url(), range: r.headers()['range'] || null, status: null, failure: null };
    byRequest.set(r, entry);
    report.requests.push(entry);
  });
  page.on('response', (resp) => {
    const e = byRequest.get(resp.request());
    if (e) e.status = resp.status();
  });
  page.on('requestfailed', (r) => {
    const e = byRequest.get(r);
    if (e) e.failure = r.failure() ? r.failure().errorText : 'failed';
  });
  collectConsole(page, report);
  try {
    await page.goto(c.page, { waitUntil: 'load' });
    await page.setContent(pageHtml(c.media), { waitUntil: 'domcontentloaded' });
    // Polled by time: polling on animation frames stalls in the pages of a
    // busy browser, which renders them rarely.
    await page.waitForFunction(() => window.probe !== undefined, null, { timeout: 10000, polling: 100 });
    if (c.kind === 'end') {
      report.end = await page.evaluate(([t]) => window.probe.waitEnded(t), [opts.endTimeoutMs]);
    } else {
      report.start = await page.evaluate(([t]) => window.probe.waitPlaying(1.0, t), [opts.startTimeoutMs]);
      if (c.kind === 'seek' && report.start.ok) {
        report.requestsBeforeSeek = report.requests.length;
        report.seek = await page.evaluate(
          ([target, t, w]) => window.probe.seekAndWatch(target, t, w),
          [c.target, opts.seekTimeoutMs, opts.watchMs]
        );
      }
    }
    // The first frame is captured by the time it plays; give a late
    // requestVideoFrameCallback a moment anyway.
    await page
      .waitForFunction(() => window.probe.frames.first !== undefined, null, { timeout: 2000, polling: 100 })
      .catch(() => {});
    const probe = await page.evaluate(() => ({
      state: window.probe.state(),
      events: window.probe.events,
      errors: window.probe.errors,
      frames: window.probe.frames,
      firstPlayingMs: window.probe.firstPlayingMs,
    }));
    Object.assign(report, probe);
  } catch (e) {
    report.driverError = String(e && e.stack ? e.stack : e);
  } finally {
    await context.close();
  }
  return report;
}

async function runCases(browser, opts) {
  const out = { browser: browser.version(), cases: [] };
  const together = opts.cases.filter((c) => c.parallel);
  out.cases.push(...(await Promise.all(together.map((c) => runCase(browser, c, opts)))));
  for (const c of opts.cases.filter((c) => !c.parallel)) out.cases.push(await runCase(browser, c, opts));
  return out;
}

drive('mp4.mjs', parseArgs, runCases);
