// The demo page: one card per media file the server lists at
// /_web/media.json (or just ?src=URL), each with a player, a seek bar that
// shows what is buffered, and the requests the player made.
//
// MP4 plays in the browser's own <video>, as cuts (`file.mp4?start=S`):
// the bar reads in the movie's time; a seek before the loaded cut's start
// loads a new cut, one after it is the browser's (a Range request), and
// "Start at" loads the cut that starts there.
//
// FLV plays through mpegts.js or flv.js, or, with lib=native, in the
// browser's own <video> as the MP4 the server makes of it (`?format=mp4`),
// cut and seeked like an MP4.
//
// Query parameters: lib=mpegts|flvjs|native, seekType=range|param, src=URL (one
// file only), autoplay=1 (start muted, without a click).
import { asMp4Url, cutUrl, installRequestLog, libraryLabel, mediaKind, Session } from './player.js';

installRequestLog();

const params = new URLSearchParams(location.search);
const settings = {
  lib: ['flvjs', 'native'].includes(params.get('lib')) ? params.get('lib') : 'mpegts',
  seekType: params.get('seekType') === 'param' ? 'param' : 'range',
  autoplay: params.get('autoplay') === '1',
};

// ------------------------------------------------------------ helpers --

function clock(seconds) {
  if (!Number.isFinite(seconds)) return '–';
  const s = Math.max(0, seconds);
  const m = Math.floor(s / 60);
  const rest = s - m * 60;
  return `${m}:${rest < 10 ? '0' : ''}${rest.toFixed(1)}`;
}

/** Seconds from `90`, `1:30` or `1:30.5` (NaN otherwise). */
function parseClock(text) {
  const m = /^\s*(?:(\d+):)?(\d+(?:\.\d*)?)\s*$/.exec(text);
  if (!m) return NaN;
  return (m[1] ? Number(m[1]) * 60 : 0) + Number(m[2]);
}

function bytes(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (className) e.className = className;
  return e;
}

/** Path and query of a URL on this server (the whole URL otherwise). */
function shortUrl(url) {
  const u = new URL(url);
  return u.origin === location.origin ? u.pathname + u.search : url;
}

function servedText(session, entry) {
  if (session.kind !== 'flv') return '';
  const { offset, via, keyframe } = session.served(entry);
  if (offset === null) return `${via}: not a single byte offset`;
  if (offset === 0) return 'the start of the file';
  const from = `byte ${offset} (${via === 'Range' ? 'Range' : `?${via}`})`;
  if (!session.keyframes) return `${from}; no keyframe list in onMetaData to place it`;
  if (!keyframe) return `${from}, before the first listed keyframe`;
  if (keyframe.exact) return `${from} = the keyframe at ${clock(keyframe.time)}`;
  return `${from}, inside the group of pictures after the keyframe at ${clock(keyframe.time)}`;
}

// --------------------------------------------------------------- card --

class Card {
  constructor(file) {
    this.file = file;
    this.session = null;
    const node = document.getElementById('card').content.firstElementChild.cloneNode(true);
    this.node = node;
    this.q = (sel) => node.querySelector(sel);
    this.video = this.q('video');
    this.bar = this.q('.bar');

    const name = this.q('.name');
    name.textContent = file.path;
    name.href = file.url;
    const facts = [];
    if (file.duration_ms) facts.push(clock(file.duration_ms / 1000));
    if (file.size) facts.push(bytes(file.size));
    if (file.width) facts.push(`${file.width}×${file.height}`);
    if (file.bitrate_bps) facts.push(`${Math.round(file.bitrate_bps / 1000)} kbit/s`);
    if (file.keyframes !== undefined) facts.push(`${file.keyframes} keyframes (the server's index: ${file.index})`);
    if (file.error) facts.push(`the server cannot serve it: ${file.error}`);
    this.q('.facts').textContent = facts.join(' · ');

    // What the player loads: an FLV as MP4 for the browser's own player.
    this.url = settings.lib === 'native' && mediaKind(file.url) === 'flv' ? asMp4Url(file.url) : file.url;
    this.kind = mediaKind(this.url);
    // The movie's duration (an MP4 cut's own is shorter).
    this.movieDuration = file.duration_ms ? file.duration_ms / 1000 : NaN;
    this.q('.player').textContent =
      this.kind === 'flv'
        ? `${libraryLabel(settings.lib)}, seekType '${settings.seekType}'`
        : this.kind === 'mp4' && this.url !== file.url
          ? "the browser's own <video>, the FLV served as MP4 (?format=mp4)"
          : this.kind === 'mp4'
          ? "the browser's own <video> (its requests are not visible to the page)"
          : 'no player for this file type';

    this.q('.start').addEventListener('click', () => this.start(false));
    if (this.kind === 'mp4') this.bindMp4();
    this.q('.toggle').addEventListener('click', () => {
      if (!this.session) return this.start(false);
      if (this.video.paused) this.video.play();
      else this.video.pause();
    });
    this.bindBar();
  }

  /** Starts playing (MP4: the cut from `at` s of the movie, if given). */
  async start(muted, at = 0) {
    if (this.session || !this.kind) return;
    this.q('.start').hidden = true;
    this.q('.toggle').disabled = false;
    this.video.muted = muted;
    const url = this.kind === 'mp4' && at > 0 ? cutUrl(this.url, at) : this.url;
    this.session = new Session(this.video, {
      url,
      library: settings.lib,
      seekType: settings.seekType,
      movieDuration: this.movieDuration,
    });
    let pending = false;
    this.session.addEventListener('change', () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        this.render();
      });
    });
    try {
      await this.session.start();
    } catch (e) {
      this.session.errors.push({ source: 'page', type: e.name, detail: e.message, info: '' });
    }
    this.render();
  }

  /** MP4: the cut's row in the status, and "Start at", which loads the cut
   *  of the movie from that time. */
  bindMp4() {
    // The browser's own requests are not the page's to see.
    this.q('.log').hidden = true;
    this.q('.cutlabel').hidden = false;
    this.q('.cut').hidden = false;
    this.q('.cut').textContent = 'not loaded yet';
    const form = this.q('.startat');
    form.hidden = false;
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const at = parseClock(form.at.value);
      const d = this.timeline();
      if (!Number.isFinite(at) || at < 0 || (Number.isFinite(d) && at >= d)) {
        form.at.setCustomValidity(`a time from 0 to ${clock(d)}, as 90 or 1:30`);
        form.at.reportValidity();
        return;
      }
      form.at.setCustomValidity('');
      if (!this.session) this.start(false, at);
      else this.session.loadCut(at);
    });
    form.at.addEventListener('input', () => form.at.setCustomValidity(''));
  }

  /** What the bar spans: the element's duration, or for MP4 the movie's
   *  (a cut starts later and is shorter). */
  timeline() {
    const s = this.session;
    if (this.kind === 'mp4') {
      if (Number.isFinite(this.movieDuration)) return this.movieDuration;
      return s ? s.offset + s.duration : NaN;
    }
    return s ? s.duration : NaN;
  }

  /** Where the element is, in the movie's time. */
  position() {
    return (this.session ? this.session.offset : 0) + this.video.currentTime;
  }

  /** MP4: what the loaded cut is. */
  cutText() {
    const s = this.session;
    const asked = new URL(s.url).searchParams.get('start');
    if (asked === null) return "the whole file: every seek is the browser's own, with Range requests";
    const from = clock(s.offset);
    const keyframe = Math.abs(Number(asked) - s.offset) >= 0.1;
    return (
      `${shortUrl(s.url)}: the file the server cut from ${from} of the movie` +
      (keyframe ? ` (the keyframe before the ${clock(Number(asked))} asked for)` : '') +
      `. Seeking before ${from} loads a new cut; after it, the browser asks for a Range of this one.`
    );
  }

  bindBar() {
    const fraction = (ev) => {
      const r = this.bar.getBoundingClientRect();
      return Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width));
    };
    let dragging = false;
    const seekTo = (f) => {
      const d = this.timeline();
      if (this.session && Number.isFinite(d)) this.session.seekMovie(Math.max(0, Math.min(f * d, d - 0.5)));
    };
    this.bar.addEventListener('pointerdown', (ev) => {
      if (!this.session) return;
      dragging = true;
      this.bar.setPointerCapture(ev.pointerId);
      this.showHover(fraction(ev));
    });
    this.bar.addEventListener('pointermove', (ev) => this.showHover(fraction(ev)));
    this.bar.addEventListener('pointerleave', () => {
      if (!dragging) this.q('.hover').style.display = 'none';
    });
    this.bar.addEventListener('pointerup', (ev) => {
      if (!dragging) return;
      dragging = false;
      seekTo(fraction(ev));
    });
    this.bar.addEventListener('keydown', (ev) => {
      if (!this.session) return;
      const step = { ArrowLeft: -10, ArrowRight: 10, PageDown: -60, PageUp: 60 }[ev.key];
      if (step === undefined) return;
      ev.preventDefault();
      const d = this.timeline();
      if (Number.isFinite(d)) seekTo((this.position() + step) / d);
    });
  }

  showHover(f) {
    const hover = this.q('.hover');
    const d = this.timeline();
    if (!Number.isFinite(d)) return;
    hover.style.display = 'block';
    hover.style.left = `${f * 100}%`;
    hover.textContent = clock(f * d);
  }

  render() {
    const s = this.session;
    const v = this.video;
    // The bar and the clock read in the movie's time: an MP4 cut's element
    // times are offset by where the cut starts (0 for anything else).
    const d = this.timeline();
    const offset = s.offset;
    const at = this.position();
    this.q('.toggle').textContent = v.paused ? '▶' : '❚❚';
    this.q('.clock').textContent = `${clock(at)} / ${clock(d)}`;
    this.bar.setAttribute('aria-valuemax', String(Number.isFinite(d) ? d : 0));
    this.bar.setAttribute('aria-valuenow', String(at));

    // Bar: buffered ranges, the played part, and keyframe ticks; for an MP4
    // cut, the part of the movie before it is hatched.
    if (Number.isFinite(d)) {
      const buffered = this.q('.buffered');
      buffered.replaceChildren();
      for (let i = 0; i < v.buffered.length; i++) {
        const span = el('span');
        span.style.left = `${((offset + v.buffered.start(i)) / d) * 100}%`;
        span.style.width = `${((v.buffered.end(i) - v.buffered.start(i)) / d) * 100}%`;
        buffered.appendChild(span);
      }
      this.q('.played').style.width = `${Math.min(100, (at / d) * 100)}%`;
      const precut = this.q('.precut');
      precut.hidden = !(offset > 0);
      precut.style.width = `${Math.min(100, (offset / d) * 100)}%`;
      const ticks = this.q('.ticks');
      const k = s.keyframes;
      if (k && ticks.childElementCount === 0 && k.times.length <= 2000) {
        for (const t of k.times) {
          const tick = el('i');
          tick.style.left = `${(t / d) * 100}%`;
          ticks.appendChild(tick);
        }
      }
    }

    const state = v.seeking ? 'seeking' : v.paused ? 'paused' : v.readyState < 3 ? 'waiting for data' : 'playing';
    this.q('.position').textContent =
      offset > 0
        ? `${clock(at)} of the movie = currentTime ${v.currentTime.toFixed(2)} s of the cut + its start ${clock(offset)} (${state})`
        : `currentTime ${v.currentTime.toFixed(2)} s (${state})`;
    if (s.kind === 'mp4') this.q('.cut').textContent = this.cutText();

    const stats = s.statistics;
    this.q('.download').textContent = stats
      ? `${Math.round(stats.speed || 0)} KB/s now; buffered up to ${clock(v.buffered.length ? v.buffered.end(v.buffered.length - 1) : 0)}`
      : s.kind === 'flv'
        ? '–'
        : 'by the browser';

    if (s.kind === 'flv') {
      const k = s.keyframes;
      this.q('.keyframes').textContent = !s.metadata
        ? 'no onMetaData yet'
        : k
          ? `${k.filepositions.length} (times and byte positions): the player can seek past what it has downloaded`
          : 'none: the player can seek only within what it has already downloaded';
    } else {
      this.q('.keyframes').textContent = 'not FLV';
    }

    const last = s.lastSeek;
    if (last) {
      const reqs = s.requestsSince(last);
      let text = `to ${clock(last.movieTarget)}`;
      if (last.targetBuffered) text += ' (already buffered)';
      if (last.newCut) text += ` → a new cut, ${shortUrl(last.url)}`;
      else if (s.kind === 'mp4') text += last.targetBuffered ? '' : ' → inside the cut: the browser asks for a Range of it';
      else text += reqs.length ? ` → ${reqs.length} request(s), first served from ${servedText(s, reqs[0])}` : ' → no request';
      if (last.advancedAt !== null) text += ` → playing after ${Math.round(last.advancedAt - last.at)} ms`;
      else if (!last.targetBuffered) text += ' → waiting…';
      this.q('.lastseek').textContent = text;
    }

    const body = this.q('.log tbody');
    body.replaceChildren();
    const reqs = s.requests();
    for (const entry of reqs.slice(-15).reverse()) {
      const tr = el('tr');
      tr.appendChild(el('td', `${((entry.at - s.startedAt) / 1000).toFixed(2)} s`));
      tr.appendChild(el('td', `${entry.method} ${shortUrl(entry.url)}`, 'url'));
      tr.appendChild(el('td', entry.range || '–'));
      tr.appendChild(el('td', servedText(s, entry)));
      body.appendChild(tr);
    }

    this.q('.errors').textContent = s.errors.map((e) => `${e.source}: ${e.type} ${e.detail} ${e.info}`).join('\n');
  }
}

// --------------------------------------------------------------- page --

async function listFiles() {
  const src = params.get('src');
  if (src) return [{ path: src, url: src }];
  const reply = await fetch('/_web/media.json', { cache: 'no-store' });
  if (!reply.ok) throw new Error(`/_web/media.json: ${reply.status}`);
  return (await reply.json()).files;
}

async function main() {
  const form = document.getElementById('settings');
  form.lib.value = settings.lib;
  form.seekType.value = settings.seekType;
  form.addEventListener('change', () => {
    const next = new URLSearchParams(location.search);
    next.set('lib', form.lib.value);
    next.set('seekType', form.seekType.value);
    location.search = next.toString();
  });

  const main = document.getElementById('media');
  let files;
  try {
    files = await listFiles();
  } catch (e) {
    main.replaceChildren(el('p', `Cannot list the media: ${e.message}`, 'note'));
    return;
  }
  main.replaceChildren();
  if (!files.length) main.appendChild(el('p', 'No media files here.', 'note'));
  const cards = files.map((f) => new Card(f));
  for (const c of cards) main.appendChild(c.node);
  if (settings.autoplay) for (const c of cards) c.start(true);
  window.demo = { cards };
}

main();
