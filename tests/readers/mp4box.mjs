// Reads MP4 files with GPAC's mp4box.js (npm `mp4box`, installed into
// web/node_modules by scripts/setup-web.sh) and prints one JSON line per
// file: what it found (tracks, their codec, sample count, duration) and
// every warning or error it logged. tests/flv_as_mp4.rs judges.
//
//   node tests/readers/mp4box.mjs FILE...
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const MP4Box = require('../../web/node_modules/mp4box/dist/mp4box.all.js');

const said = [];
for (const level of ['warn', 'error']) {
  const original = console[level];
  console[level] = (...args) => {
    said.push(`${level}: ${args.join(' ')}`);
    if (process.env.MP4BOX_VERBOSE) original(...args);
  };
}
MP4Box.Log.setLogLevel(MP4Box.Log.warn);

for (const path of process.argv.slice(2)) {
  said.length = 0;
  const report = { file: path, error: null, info: null, said: [] };
  try {
    const bytes = readFileSync(path);
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    buffer.fileStart = 0;
    const file = MP4Box.createFile();
    file.onError = (e) => { report.error = String(e); };
    file.onReady = (info) => {
      report.info = {
        duration: info.duration / info.timescale,
        fragmented: info.isFragmented,
        tracks: info.tracks.map((t) => ({
          type: t.type,
          codec: t.codec,
          samples: t.nb_samples,
          duration: t.duration / t.timescale,
        })),
      };
    };
    file.appendBuffer(buffer);
    file.flush();
  } catch (e) {
    report.error = String(e && e.stack ? e.stack : e);
  }
  report.said = [...said];
  console.log(JSON.stringify(report));
}
