// The part of the demo page that the browser tests use too: a log of the
// requests the page makes, and a Session that plays one media URL in a
// <video> element (FLV through mpegts.js or flv.js, MP4 natively) and
// records what happens around each seek.
//
// An MP4 URL may be a cut (`movie.mp4?start=S`): a file of its own that
// starts at S s of the movie. The element's times are the cut's; the
// Session keeps S (`offset`) so the page can show the movie's time, and
// seekMovie() loads a new cut for a time before S (the element cannot
// seek there) and seeks natively, with Range requests, after it.
//
// The player libraries are classic scripts that define window.mpegts and
// window.flvjs; load them before starting a session (loadLibrary does).

// ------------------------------------------------------------ requests --

const requestLog = [];
const requestListeners = new Set();

function record(api, method, url, range) {
  const entry = {
    n: requestLog.length,
    at: performance.now(),
    api,
    method: (method || 'GET').toUpperCase(),
    url: new URL(url, location.href).href,
    range: range || null,
  };
  requestLog.push(entry);
  for (const fn of requestListeners) fn(entry);
}

/** Wraps window.fetch and XMLHttpRequest (once) so every request the page
 *  makes, the players' included, lands in the log with its Range header. */
export function installRequestLog() {
  if (window.__pseudostreamLog) return;
  window.__pseudostreamLog = requestLog;

  const originalFetch = window.fetch;
  window.fetch = function (input, init) {
    const isRequest = typeof Request !== 'undefined' && input instanceof Request;
    const url = isRequest ? input.url : String(input);
    const headers = new Headers((init && init.headers) || (isRequest ? input.headers : undefined));
    const method = (init && init.method) || (isRequest ? input.method : 'GET');
    record('fetch', method, url, headers.get('Range'));
    return originalFetch.apply(this, arguments);
  };

  const proto = XMLHttpRequest.prototype;
  const open = proto.open;
  const setRequestHeader = proto.setRequestHeader;
  const send = proto.send;
  proto.open = function (method, url) {
    this.__psRequest = { method, url: String(url), range: null };
    return open.apply(this, arguments);
  };
  proto.setRequestHeader = function (name, value) {
    if (this.__psRequest && String(name).toLowerCase() === 'range') this.__psRequest.range = value;
    return setRequestHeader.apply(this, arguments);
  };
  proto.send = function () {
    const r = this.__psRequest;
    if (r) record('xhr', r.method, r.url, r.range);
    return send.apply(this, arguments);
  };
}

export function requests() {
  return requestLog;
}

export function onRequest(fn) {
  requestListeners.add(fn);
  return () => requestListeners.delete(fn);
}

// ------------------------------------------------------------- players --

/** What plays a URL, by the extension of its path: 'flv' (through a
 *  player library), 'mp4' (the browser's own <video>), or null. */
export function mediaKind(url) {
  const u = new URL(url, location.href);
  const path = u.pathname.toLowerCase();
  // An FLV the server serves as MP4 plays like one.
  if (path.endsWith('.flv')) return u.searchParams.get('format') === 'mp4' ? 'mp4' : 'flv';
  if (path.endsWith('.mp4') || path.endsWith('.m4v')) return 'mp4';
  return null;
}

/** The movie time an MP4 cut's URL starts at (its `start`, seconds), or 0. */
export function cutStart(url) {
  const value = new URL(url, location.href).searchParams.get('start');
  const seconds = value === null ? NaN : Number(value);
  return Number.isFinite(seconds) && seconds > 0 ? seconds : 0;
}

/** The URL of the cut of `url` that starts at `seconds` of the movie
 *  (tenths, rounded down; the whole file for 0). An `end` at or before the
 *  new start is dropped. */
export function cutUrl(url, seconds) {
  const u = new URL(url, location.href);
  const start = Math.max(0, Math.floor(seconds * 10) / 10);
  if (start > 0) u.searchParams.set('start', String(start));
  else u.searchParams.delete('start');
  const end = Number(u.searchParams.get('end'));
  if (u.searchParams.has('end') && !(end > start)) u.searchParams.delete('end');
  return u.href;
}

const LIBRARIES = {
  mpegts: { script: '/_web/lib/mpegts.js', global: 'mpegts', label: 'mpegts.js' },
  flvjs: { script: '/_web/lib/flv.js', global: 'flvjs', label: 'flv.js' },
};

/** The URL of an FLV served as MP4 (`?format=mp4`). */
export function asMp4Url(url) {
  const u = new URL(url, location.href);
  u.searchParams.set('format', 'mp4');
  return u.href;
}

export function libraryLabel(name) {
  return LIBRARIES[name] ? LIBRARIES[name].label : name;
}

/** Loads a player library's script once; resolves to its global. */
export function loadLibrary(name) {
  const lib = LIBRARIES[name];
  if (!lib) return Promise.reject(new Error(`unknown player library '${name}'`));
  if (window[lib.global]) return Promise.resolve(window[lib.global]);
  if (!lib.loading) {
    lib.loading = new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = lib.script;
      s.onload = () =>
        window[lib.global] ? resolve(window[lib.global]) : reject(new Error(`${lib.script} defined no ${lib.global}`));
      s.onerror = () => reject(new Error(`cannot load ${lib.script}`));
      document.head.appendChild(s);
    });
  }
  return lib.loading;
}

/** The byte offset a request asks the media for, and how it asks. */
export function requestedOffset(entry) {
  if (entry.range) {
    const m = /^bytes=(\d+)-(\d*)$/.exec(entry.range.trim());
    if (m) return { offset: Number(m[1]), via: 'Range' };
    return { offset: null, via: 'Range' };
  }
  const q = new URL(entry.url).searchParams;
  for (const name of ['bstart', 'fs', 'start']) {
    const v = q.get(name);
    if (v !== null && /^\d+$/.test(v)) return { offset: Number(v), via: name };
  }
  return { offset: 0, via: 'none' };
}

/** The keyframe of an onMetaData keyframes list {times, filepositions} at
 *  or before a byte offset: {time, position, exact}, or null. */
export function keyframeAt(keyframes, offset) {
  if (!keyframes || offset == null) return null;
  const { times, filepositions } = keyframes;
  let found = -1;
  for (let i = 0; i < filepositions.length && i < times.length; i++) {
    if (filepositions[i] <= offset) found = i;
    else break;
  }
  if (found < 0) return null;
  return { time: times[found], position: filepositions[found], exact: filepositions[found] === offset };
}

export function bufferedRanges(video) {
  const out = [];
  for (let i = 0; i < video.buffered.length; i++) out.push([video.buffered.start(i), video.buffered.end(i)]);
  return out;
}

/** One media URL playing in one <video>. Dispatches 'change' events when
 *  anything shown about it changes. */
export class Session extends EventTarget {
  constructor(video, { url, library = 'mpegts', seekType = 'range', stashBuffer = false, movieDuration = NaN }) {
    super();
    this.video = video;
    this.url = new URL(url, location.href).href;
    this.kind = mediaKind(this.url);
    // MP4: the movie time the loaded cut starts at (0 for FLV), and the
    // movie's duration when known (it places cuts made at a keyframe).
    this.offset = this.kind === 'mp4' ? cutStart(this.url) : 0;
    this.movieDuration = movieDuration;
    this.library = this.kind === 'flv' ? library : 'native';
    this.seekType = seekType;
    this.stashBuffer = stashBuffer;
    this.player = null;
    this.metadata = null;
    this.statistics = null;
    this.errors = [];
    this.seeks = [];
    this.startedAt = null;
    this.firstPlayingAt = null;
    this._onVideo = this._onVideo.bind(this);
    for (const type of ['seeking', 'seeked', 'waiting', 'playing', 'timeupdate', 'ended', 'error', 'durationchange', 'progress', 'pause'])
      video.addEventListener(type, this._onVideo);
  }

  /** The onMetaData keyframes list, when the player reported one. */
  get keyframes() {
    const k = this.metadata && this.metadata.keyframes;
    if (!k || !Array.isArray(k.times) || !Array.isArray(k.filepositions)) return null;
    return k;
  }

  get duration() {
    const d = this.video.duration;
    if (Number.isFinite(d) && d > 0) return d;
    return this.metadata && this.metadata.duration > 0 ? this.metadata.duration : NaN;
  }

  /** MP4: where the loaded cut really starts. A host may cut at the
   *  keyframe before `start` (keyframe mode) and the page cannot see its
   *  headers; a cut without `end` runs to the movie's end, so it starts at
   *  the movie's duration less its own. */
  _placeCut() {
    const d = this.video.duration;
    if (this.kind !== 'mp4' || !(this.movieDuration > 0) || !Number.isFinite(d) || d <= 0) return;
    const q = new URL(this.url).searchParams;
    if (!q.has('start') || q.has('end')) return;
    const asked = cutStart(this.url);
    const start = this.movieDuration - d;
    // Within a tenth: rounding of the durations. More than 10 s before (a
    // GOP is a few seconds): not what a host does, keep the asked start.
    if (Math.abs(start - asked) >= 0.1 && start < asked && start > asked - 10) this.offset = start;
    else this.offset = asked;
  }

  /** Requests for this media (any query), in order. */
  requests() {
    const path = new URL(this.url).pathname;
    return requestLog.filter((e) => new URL(e.url).pathname === path);
  }

  /** What a request of this media is served from: its offset, and the
   *  keyframe the onMetaData list places there. */
  served(entry) {
    const { offset, via } = requestedOffset(entry);
    return { offset, via, keyframe: offset ? keyframeAt(this.keyframes, offset) : null };
  }

  async start() {
    this.startedAt = performance.now();
    if (this.kind === 'mp4' || this.kind === null) {
      this.video.src = this.url;
    } else {
      const lib = await loadLibrary(this.library);
      if (!lib.isSupported()) throw new Error(`${libraryLabel(this.library)}: Media Source Extensions are not available`);
      const player = lib.createPlayer(
        { type: 'flv', url: this.url, isLive: false },
        {
          seekType: this.seekType,
          // Land where asked, not on the keyframe before it.
          accurateSeek: true,
          // The stash (384 KB at first) holds data back until it fills:
          // with a paced response that is seconds of media, and playback
          // stalls a second after each seek. Paced data is best handed on
          // as it arrives.
          enableStashBuffer: this.stashBuffer,
          enableWorker: false,
        }
      );
      this.player = player;
      player.on(lib.Events.ERROR, (type, detail, info) => {
        this.errors.push({ source: libraryLabel(this.library), type, detail, info: info ? JSON.stringify(info) : '' });
        this._changed();
      });
      player.on(lib.Events.METADATA_ARRIVED, (meta) => {
        // The first onMetaData describes the file (a seek may bring another).
        if (!this.metadata) this.metadata = meta;
        this._changed();
      });
      player.on(lib.Events.STATISTICS_INFO, (stats) => {
        this.statistics = stats;
        this._changed();
      });
      player.attachMediaElement(this.video);
      player.load();
    }
    this._changed();
    return this.video.play().catch((e) => {
      this.errors.push({ source: 'video.play()', type: e.name, detail: e.message, info: '' });
      this._changed();
    });
  }

  /** MP4: seeks to `seconds` of the movie: natively (the browser asks for a
   *  Range of the loaded cut) at or after the cut's start, with a new cut
   *  (`?start=`) before it. Anything else: seek(). */
  seekMovie(seconds) {
    if (this.kind !== 'mp4' || seconds >= this.offset) return this.seek(seconds - this.offset);
    return this.loadCut(seconds);
  }

  /** MP4: plays the cut of the movie that starts at `seconds` (recorded as
   *  a seek to its time 0, `newCut` set). */
  loadCut(seconds) {
    const record = this._record(0);
    record.newCut = true;
    record.targetBuffered = false;
    record.movieTarget = seconds;
    this.url = cutUrl(this.url, seconds);
    this.offset = cutStart(this.url);
    record.offset = this.offset;
    record.url = this.url;
    this.video.src = this.url;
    this.video.play().catch((e) => {
      this.errors.push({ source: 'video.play()', type: e.name, detail: e.message, info: '' });
      this._changed();
    });
    this._watch(record);
    return record;
  }

  /** Seeks to `seconds` (the element's time), recording when it is asked,
   *  which requests follow and when the element plays again past the
   *  target. */
  seek(seconds) {
    const record = this._record(seconds);
    if (this.player) this.player.currentTime = seconds;
    else this.video.currentTime = seconds;
    this._watch(record);
    return record;
  }

  /** A new seek record (`target` in the element's time, `offset` the
   *  movie time of the element's 0). */
  _record(seconds) {
    const record = {
      target: seconds,
      offset: this.offset,
      // What was asked, in the movie's time.
      movieTarget: this.offset + seconds,
      newCut: false,
      at: performance.now(),
      bufferedBefore: bufferedRanges(this.video),
      firstRequest: requestLog.length,
      seekedAt: null,
      playingAt: null,
      advancedAt: null,
    };
    record.targetBuffered = record.bufferedBefore.some(([s, e]) => seconds >= s && seconds < e);
    this.seeks.push(record);
    return record;
  }

  _watch(record) {
    // timeupdate comes every 250 ms or so: watch each frame instead.
    const watch = () => {
      if (record !== this.lastSeek || record.advancedAt !== null) return;
      this._checkAdvance(record, performance.now());
      requestAnimationFrame(watch);
    };
    requestAnimationFrame(watch);
    this._changed();
    return record;
  }

  /** Marks a seek as done once the element moves past its target. */
  _checkAdvance(record, now) {
    const v = this.video;
    if (record.advancedAt === null && !v.seeking && !v.paused && v.readyState >= 3 && v.currentTime > record.target + 0.1) {
      record.advancedAt = now;
      record.landedAt = v.currentTime;
      if (record.playingAt === null) record.playingAt = now;
    }
  }

  get lastSeek() {
    return this.seeks.length ? this.seeks[this.seeks.length - 1] : null;
  }

  /** Requests made since a seek record. */
  requestsSince(record) {
    const path = new URL(this.url).pathname;
    return requestLog.slice(record.firstRequest).filter((e) => new URL(e.url).pathname === path);
  }

  destroy() {
    for (const type of ['seeking', 'seeked', 'waiting', 'playing', 'timeupdate', 'ended', 'error', 'durationchange', 'progress', 'pause'])
      this.video.removeEventListener(type, this._onVideo);
    if (this.player) {
      this.player.pause();
      this.player.unload();
      this.player.detachMediaElement();
      this.player.destroy();
      this.player = null;
    } else {
      this.video.removeAttribute('src');
      this.video.load();
    }
  }

  _onVideo(ev) {
    const now = performance.now();
    const v = this.video;
    const s = this.lastSeek;
    switch (ev.type) {
      case 'playing':
        if (this.firstPlayingAt === null) this.firstPlayingAt = now;
        if (s && s.playingAt === null) s.playingAt = now;
        break;
      case 'seeked':
        if (s && s.seekedAt === null) s.seekedAt = now;
        break;
      case 'timeupdate':
        if (s) this._checkAdvance(s, now);
        break;
      case 'durationchange':
        this._placeCut();
        break;
      case 'error': {
        const e = v.error;
        this.errors.push({ source: '<video>', type: 'MediaError', detail: e ? `${e.code} ${e.message}` : 'unknown', info: '' });
        break;
      }
    }
    this._changed();
  }

  _changed() {
    this.dispatchEvent(new Event('change'));
  }
}
