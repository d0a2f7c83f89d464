// window.harness: one Session on the page's <video>, and the measurements
// the browser tests ask for. Times are milliseconds of performance.now().
import { bufferedRanges, installRequestLog, Session } from './player.js';

installRequestLog();

// ---------------------------------------------------------- diagnostics --
// What the player was handed and what it did with it, for a failure report:
// each media response's bytes read as FLV tags as they reached the player
// (where it started, which keyframes it held, where its tag chain broke),
// and every SourceBuffer append (its tfdt and first sample's sync flag),
// remove and abort with the buffered ranges after it. Nothing here changes
// what the player sees: the body is handed on chunk by chunk as read.

const diag = { responses: [], mse: [], sourceBuffers: [] };
const now = () => Math.round(performance.now());

/** Reads a stream of FLV bytes (a file from its header, or from a tag):
 *  tags by type, keyframes, the first tags and the first break. */
class FlvScan {
  constructor(rec, at) {
    this.rec = rec;
    this.pos = at; // the file offset of the next byte
    this.state = 'start';
    this.head = [];
    this.skip = 0;
    this.tag = null;
    rec.flv = { startsWith: null, tags: { audio: 0, video: 0, script: 0 }, first: [], keyframes: [], lastTs: null, broken: null, lone: [] };
    // flv.js and mpegts.js remux what each chunk completes, but a batch
    // of one sample of a kind stays in the demuxer's queue until a later
    // chunk brings more of that kind (and a seek does not clear it): the
    // tags so held, after each chunk that changed them.
    this.done = { audio: [], video: [] };
    this.held = { audio: null, video: null };
  }

  /** After a chunk: what the players hold back, by the tags it completed. */
  chunkDone(ms) {
    const f = this.rec.flv;
    let changed = false;
    for (const kind of ['audio', 'video']) {
      const batch = (this.held[kind] ? [this.held[kind]] : []).concat(this.done[kind]);
      const held = batch.length === 1 ? batch[0] : null;
      if (held !== this.held[kind]) changed = true;
      this.held[kind] = held;
      this.done[kind] = [];
    }
    if (changed && f.lone.length < 400) {
      f.lone.push([ms, this.held.audio, this.held.video]);
    }
  }

  /** Bytes 'want' long gathered in this.head; true when complete. */
  gather(bytes, i, want) {
    while (this.head.length < want && i.n < bytes.length) this.head.push(bytes[i.n++]);
    return this.head.length === want;
  }

  push(bytes) {
    const f = this.rec.flv;
    const i = { n: 0 };
    while (i.n < bytes.length && !f.broken) {
      if (this.skip > 0) {
        const k = Math.min(this.skip, bytes.length - i.n);
        this.skip -= k;
        i.n += k;
        this.pos += k;
        continue;
      }
      const before = i.n;
      switch (this.state) {
        case 'start':
          if (!this.gather(bytes, i, 3)) break;
          if (this.head[0] === 0x46 && this.head[1] === 0x4c && this.head[2] === 0x56) {
            f.startsWith = 'FLV header';
            this.state = 'header';
          } else {
            f.startsWith = 'tag';
            this.state = 'tag';
          }
          continue; // keeps head: the tag or header goes on gathering
        case 'header':
          if (!this.gather(bytes, i, 13)) break;
          this.pos += 13;
          this.head = [];
          this.state = 'tag';
          continue;
        case 'tag': {
          if (!this.gather(bytes, i, 13)) break;
          const h = this.head;
          const type = h[0] & 0x1f;
          const size = (h[1] << 16) | (h[2] << 8) | h[3];
          const ts = ((h[4] << 16) | (h[5] << 8) | h[6]) + h[7] * 0x1000000;
          const at = this.pos;
          if (![8, 9, 18].includes(type)) {
            f.broken = { at, why: `tag type ${type}`, bytes: h.slice(0, 11) };
            break;
          }
          const t = { at, type, size, ts };
          if (type === 9) {
            t.frame = h[11] >> 4;
            t.codec = h[11] & 0x0f;
            t.packet = h[12];
            f.tags.video++;
            if (t.frame === 1 && t.packet === 1) f.keyframes.push([ts, at]);
          } else if (type === 8) {
            f.tags.audio++;
          } else {
            f.tags.script++;
          }
          f.lastTs = ts;
          if (f.first.length < 8) f.first.push(t);
          this.tag = t;
          this.pos += 13;
          this.head = [];
          // the body's last bytes, then PreviousTagSize
          this.skip = size - 2;
          this.state = 'prev';
          if (this.skip < 0) {
            f.broken = { at, why: `tag size ${size}` };
          }
          continue;
        }
        case 'prev': {
          if (!this.gather(bytes, i, 4)) break;
          const h = this.head;
          const prev = ((h[0] << 24) >>> 0) + ((h[1] << 16) | (h[2] << 8) | h[3]);
          if (prev !== this.tag.size + 11) {
            f.broken = { at: this.pos, why: `PreviousTagSize ${prev} after a tag of ${this.tag.size} at ${this.tag.at}` };
          }
          // the players take a tag once its PreviousTagSize is in too
          if (this.tag.type !== 18) this.done[this.tag.type === 8 ? 'audio' : 'video'].push([this.tag.ts, this.tag.at]);
          this.pos += 4;
          this.head = [];
          this.state = 'tag';
          continue;
        }
      }
      if (i.n === before) break;
    }
  }
}

function isMedia(url) {
  return /\.flv(\?|$)/i.test(new URL(url, location.href).pathname + '?');
}

/** Wraps fetch (over the request log's wrapper): every media response's
 *  body goes through a scan on its way to the player. */
function observeFetch() {
  const inner = window.fetch;
  window.fetch = function (input, init) {
    const isRequest = typeof Request !== 'undefined' && input instanceof Request;
    const url = new URL(isRequest ? input.url : String(input), location.href).href;
    const promise = inner.apply(this, arguments);
    if (!isMedia(url)) return promise;
    const headers = new Headers((init && init.headers) || (isRequest ? input.headers : undefined));
    const range = headers.get('Range');
    const m = range && /^bytes=(\d+)-/.exec(range);
    const q = new URL(url).searchParams.get('bstart');
    const rec = {
      at: now(),
      url,
      range,
      from: m ? Number(m[1]) : q !== null ? Number(q) : 0,
      status: null,
      contentRange: null,
      headersMs: null,
      received: 0,
      chunks: 0,
      firstChunks: [],
      end: null,
    };
    diag.responses.push(rec);
    const scan = new FlvScan(rec, m ? Number(m[1]) : 0);
    return promise.then(
      (res) => {
        rec.status = res.status;
        rec.contentRange = res.headers.get('Content-Range');
        rec.headersMs = now() - rec.at;
        if (!res.body) return res;
        const reader = res.body.getReader();
        const body = new ReadableStream(
          {
            async pull(controller) {
              let r;
              try {
                r = await reader.read();
              } catch (e) {
                rec.end = { how: 'error', ms: now() - rec.at, error: String(e) };
                throw e;
              }
              if (r.done) {
                rec.end = { how: 'done', ms: now() - rec.at };
                controller.close();
                return;
              }
              rec.received += r.value.byteLength;
              rec.chunks++;
              if (rec.firstChunks.length < 200) rec.firstChunks.push([now() - rec.at, r.value.byteLength]);
              scan.push(r.value);
              scan.chunkDone(now());
              controller.enqueue(r.value);
            },
            cancel(reason) {
              rec.end = { how: 'cancelled', ms: now() - rec.at };
              return reader.cancel(reason);
            },
          },
          { highWaterMark: 0 }
        );
        Object.defineProperty(res, 'body', { value: body });
        return res;
      },
      (e) => {
        rec.end = { how: 'fetch failed', ms: now() - rec.at, error: String(e) };
        throw e;
      }
    );
  };
}

/** A box's payload offset in an MP4 segment (first match), or -1. */
function findBox(u8, name) {
  const c = [...name].map((ch) => ch.charCodeAt(0));
  for (let i = 4; i + 4 <= u8.length; i++) {
    if (u8[i] === c[0] && u8[i + 1] === c[1] && u8[i + 2] === c[2] && u8[i + 3] === c[3]) return i + 4;
  }
  return -1;
}

function u32(u8, at) {
  return ((u8[at] << 24) >>> 0) + ((u8[at + 1] << 16) | (u8[at + 2] << 8) | u8[at + 3]);
}

/** An append's summary: an init segment's timescale, or a media
 *  segment's tfdt (seconds), sample count and first sample's sync flag. */
function segmentSummary(sb, data) {
  const u8 = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = { bytes: u8.length };
  const kind = String.fromCharCode(...u8.subarray(4, 8));
  if (kind === 'ftyp' || kind === 'moov') {
    const mdhd = findBox(u8, 'mdhd');
    if (mdhd >= 0) {
      const v1 = u8[mdhd] === 1;
      sb.__timescale = u32(u8, mdhd + 4 + (v1 ? 16 : 8));
    }
    out.init = sb.__timescale || null;
    return out;
  }
  const tfdt = findBox(u8, 'tfdt');
  if (tfdt >= 0) {
    const v1 = u8[tfdt] === 1;
    const t = v1 ? u32(u8, tfdt + 4) * 0x100000000 + u32(u8, tfdt + 8) : u32(u8, tfdt + 4);
    out.tfdt = Number((t / (sb.__timescale || 1000)).toFixed(3));
  }
  const trun = findBox(u8, 'trun');
  if (trun >= 0) {
    const flags = u32(u8, trun) & 0xffffff;
    out.samples = u32(u8, trun + 4);
    let p = trun + 8 + (flags & 0x1 ? 4 : 0);
    let first = null;
    if (flags & 0x4) first = u32(u8, p);
    else if (flags & 0x400) first = u32(u8, p + (flags & 0x100 ? 4 : 0) + (flags & 0x200 ? 4 : 0));
    if (first !== null) out.sync = ((first >>> 16) & 1) === 0;
  }
  return out;
}

function ranges(tr) {
  const out = [];
  for (let i = 0; i < tr.length; i++) out.push([Number(tr.start(i).toFixed(3)), Number(tr.end(i).toFixed(3))]);
  return out;
}

/** Logs SourceBuffer appends, removes and aborts, and the buffered ranges
 *  after each update. */
function observeMse() {
  if (typeof MediaSource === 'undefined') return;
  const add = MediaSource.prototype.addSourceBuffer;
  MediaSource.prototype.addSourceBuffer = function (mime) {
    const sb = add.call(this, mime);
    diag.sourceBuffers.push(sb);
    sb.__kind = String(mime).split('/')[0];
    sb.addEventListener('updateend', () => {
      let b = null;
      try {
        b = ranges(sb.buffered);
      } catch (e) {
        b = String(e);
      }
      diag.mse.push([now(), sb.__kind, 'updateend', b]);
    });
    sb.addEventListener('error', () => diag.mse.push([now(), sb.__kind, 'error']));
    diag.mse.push([now(), sb.__kind, 'added', String(mime)]);
    return sb;
  };
  const proto = SourceBuffer.prototype;
  const append = proto.appendBuffer;
  const remove = proto.remove;
  const abort = proto.abort;
  proto.appendBuffer = function (data) {
    let s = null;
    try {
      s = segmentSummary(this, data);
    } catch (e) {
      s = { error: String(e) };
    }
    diag.mse.push([now(), this.__kind, 'append', s]);
    return append.apply(this, arguments);
  };
  proto.remove = function (start, end) {
    diag.mse.push([now(), this.__kind, 'remove', [Number(start.toFixed(3)), Number(end.toFixed(3))]]);
    return remove.apply(this, arguments);
  };
  proto.abort = function () {
    diag.mse.push([now(), this.__kind, 'abort', this.updating]);
    return abort.apply(this, arguments);
  };
}

observeFetch();
observeMse();
for (const type of ['seeking', 'seeked', 'waiting', 'playing', 'stalled']) {
  document.getElementById('video').addEventListener(type, (e) =>
    diag.mse.push([now(), 'element', type, Number(e.target.currentTime.toFixed(3))])
  );
}

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

/** The diagnostics from `t0` on, times in ms since it. */
function diagnosticsSince(t0) {
  const rel = (t) => Math.round(t - t0);
  // The response that was playing when the seek was asked, and what the
  // player held back of it then.
  const before = diag.responses.filter((r) => r.at < t0 - 1).pop();
  let heldAtSeek = null;
  if (before && before.flv) {
    const last = before.flv.lone.filter((e) => e[0] <= t0).pop();
    heldAtSeek = { url: before.url, range: before.range, audio: last ? last[1] : null, video: last ? last[2] : null };
  }
  const relFlv = (f) => f && { ...f, lone: f.lone.map(([t, a, v]) => [rel(t), a, v]) };
  return {
    heldAtSeek,
    previous: before ? { ...before, at: rel(before.at), flv: relFlv(before.flv) } : null,
    responses: diag.responses
      .filter((r) => r.at >= t0 - 1)
      .map((r) => ({ ...r, at: rel(r.at), flv: relFlv(r.flv) })),
    mse: diag.mse
      .filter((e) => e[0] >= t0 - 1)
      .slice(0, 600)
      .map(([t, ...rest]) => [rel(t), ...rest]),
    sourceBuffers: diag.sourceBuffers.map((sb) => {
      try {
        return [sb.__kind, ranges(sb.buffered)];
      } catch (e) {
        return [sb.__kind, String(e)];
      }
    }),
  };
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
      diagnostics: diagnosticsSince(rec.at),
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
