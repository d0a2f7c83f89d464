// The demo page: one card per media file the server lists at
// /_web/media.json (or just ?src=URL), each with a player, a seek bar that
// shows what is buffered, and the requests the player made.
//
// Query parameters: lib=mpegts|flvjs, seekType=range|param, src=URL (one
// file only), autoplay=1 (start muted, without a click).
import { installRequestLog, libraryLabel, mediaKind, Session } from './player.js';

installRequestLog();

const params = new URLSearchParams(location.search);
const settings = {
  lib: params.get('lib') === 'flvjs' ? 'flvjs' : 'mpegts',
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

    this.kind = mediaKind(file.url);
    this.q('.player').textContent =
      this.kind === 'flv'
        ? `${libraryLabel(settings.lib)}, seekType '${settings.seekType}'`
        : this.kind === 'mp4'
          ? "the browser's own <video> (its requests are not visible to the page)"
          : 'no player for this file type';

    this.q('.start').addEventListener('click', () => this.start(false));
    this.q('.toggle').addEventListener('click', () => {
      if (!this.session) return this.start(false);
      if (this.video.paused) this.video.play();
      else this.video.pause();
    });
    this.bindBar();
  }

  async start(muted) {
    if (this.session || !this.kind) return;
    this.q('.start').hidden = true;
    this.q('.toggle').disabled = false;
    this.video.muted = muted;
    this.session = new Session(this.video, { url: this.file.url, library: settings.lib, seekType: settings.seekType });
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

  bindBar() {
    const fraction = (ev) => {
      const r = this.bar.getBoundingClientRect();
      return Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width));
    };
    let dragging = false;
    const seekTo = (f) => {
      const d = this.session ? this.session.duration : NaN;
      if (Number.isFinite(d)) this.session.seek(Math.min(f * d, d - 0.5));
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
      const d = this.session.duration;
      if (Number.isFinite(d)) seekTo((this.video.currentTime + step) / d);
    });
  }

  showHover(f) {
    const hover = this.q('.hover');
    const d = this.session ? this.session.duration : NaN;
    if (!Number.isFinite(d)) return;
    hover.style.display = 'block';
    hover.style.left = `${f * 100}%`;
    hover.textContent = clock(f * d);
  }

  render() {
    const s = this.session;
    const v = this.video;
    const d = s.duration;
    this.q('.toggle').textContent = v.paused ? '▶' : '❚❚';
    this.q('.clock').textContent = `${clock(v.currentTime)} / ${clock(d)}`;
    this.bar.setAttribute('aria-valuemax', String(Number.isFinite(d) ? d : 0));
    this.bar.setAttribute('aria-valuenow', String(v.currentTime));

    // Bar: buffered ranges, the played part, and keyframe ticks.
    if (Number.isFinite(d)) {
      const buffered = this.q('.buffered');
      buffered.replaceChildren();
      for (let i = 0; i < v.buffered.length; i++) {
        const span = el('span');
        span.style.left = `${(v.buffered.start(i) / d) * 100}%`;
        span.style.width = `${((v.buffered.end(i) - v.buffered.start(i)) / d) * 100}%`;
        buffered.appendChild(span);
      }
      this.q('.played').style.width = `${Math.min(100, (v.currentTime / d) * 100)}%`;
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
    this.q('.position').textContent = `currentTime ${v.currentTime.toFixed(2)} s (${state})`;

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
      let text = `to ${clock(last.target)}`;
      if (last.targetBuffered) text += ' (already buffered)';
      text += reqs.length ? ` → ${reqs.length} request(s), first served from ${servedText(s, reqs[0])}` : ' → no request';
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
