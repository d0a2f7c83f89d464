// window.harness: one Session on the page's <video>, and the measurements
// the browser tests ask for. Times are milliseconds of performance.now().
import { bufferedRanges, installRequestLog, Session } from './player.js';

installRequestLog();

const video = document.getElementById('video');
const status = document.getElementById('status');
let session = null;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (x, digits = 3) => (x === null || x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(digits)));
const since = (t0, t) => (t === null || t === undefined ? null : Math.round(t - t0));

function show() {
  if (!session) return;
  const s = session.lastSeek;
  status.textContent =
    `${session.library} ${session.seekType} ${session.url}\n` +
    `t=${video.currentTime.toFixed(2)} / ${session.duration} readyState=${video.readyState}` +
    (s ? `\nseek to ${s.target.toFixed(2)}: advanced=${s.advancedAt !== null}` : '');
}

window.harness = {
  /** Starts playing `src` with `lib` ('mpegts' or 'flvjs'). */
  async start({ src, lib, seekType, stashBuffer = false }) {
    video.muted = true;
    session = new Session(video, { url: src, library: lib, seekType, stashBuffer });
    session.addEventListener('change', show);
    await session.start();
    return { kind: session.kind, library: session.library };
  },

  /** Resolves once currentTime passes `minTime` while playing (or on
   *  timeout): how long that took from start(). */
  async waitPlaying(minTime, timeoutMs) {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (!video.paused && !video.seeking && video.currentTime >= minTime && Number.isFinite(session.duration)) {
        return { ok: true, ms: since(session.startedAt, performance.now()), currentTime: video.currentTime };
      }
      if (session.errors.length) break;
      await sleep(50);
    }
    return { ok: false, ms: since(session.startedAt, performance.now()), currentTime: video.currentTime, readyState: video.readyState };
  },

  duration() {
    return session.duration;
  },

  /** Seeks to `target` seconds and watches: until the element plays past
   *  the target (or `timeoutMs`), then `watchMs` more, sampling currentTime. */
  async seekAndWatch(target, { timeoutMs, watchMs, sampleMs = 200 }) {
    const errorsBefore = session.errors.length;
    const rec = session.seek(target);
    const samples = [];
    const sample = () =>
      samples.push([since(rec.at, performance.now()), round(video.currentTime), video.readyState, video.paused, video.seeking]);
    let watchUntil = null;
    const deadline = rec.at + timeoutMs;
    for (;;) {
      sample();
      const now = performance.now();
      if (watchUntil === null && rec.advancedAt !== null) watchUntil = now + watchMs;
      if (watchUntil !== null && now >= watchUntil) break;
      if (watchUntil === null && now >= deadline) break;
      if (session.errors.length > errorsBefore) break;
      await sleep(sampleMs);
    }
    return {
      target: round(target),
      targetBuffered: rec.targetBuffered,
      bufferedBefore: rec.bufferedBefore.map(([a, b]) => [round(a), round(b)]),
      requests: session.requestsSince(rec).map((e) => ({
        atMs: since(rec.at, e.at),
        api: e.api,
        method: e.method,
        url: e.url,
        range: e.range,
        ...session.served(e),
      })),
      seekedMs: since(rec.at, rec.seekedAt),
      playingMs: since(rec.at, rec.playingAt),
      advanceMs: since(rec.at, rec.advancedAt),
      timedOut: rec.advancedAt === null,
      samples,
      currentTime: round(video.currentTime),
      bufferedAfter: bufferedRanges(video).map(([a, b]) => [round(a), round(b)]),
      ended: video.ended,
      errors: session.errors.slice(errorsBefore),
    };
  },

  /** What the player knows: onMetaData (keyframes summarised), errors. */
  state() {
    const meta = session.metadata;
    const k = session.keyframes;
    return {
      duration: round(session.duration),
      currentTime: round(video.currentTime),
      ended: video.ended,
      metadataKeyframes: k ? k.filepositions.length : null,
      metadataDuration: meta ? meta.duration : null,
      errors: session.errors,
      requests: session.requests().map((e) => ({ url: e.url, range: e.range })),
    };
  },
};
document.title += ' (ready)';
