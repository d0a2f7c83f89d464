#!/usr/bin/env bash
# Fetch small MP4/3GP/M4A/FLV files that other projects ship as test fixtures
# in their PyPI source packages, into OUTDIR (e.g. target/fixture-corpus),
# for tests/muxer_corpus.rs. Each package is pinned by version and SHA-256;
# nothing is committed. Needs the PyPI registry (pip's configured index).
#
#   mutagen 1.47.0     iTunes-style M4A/M4B (ALAC, chapters), a 3G2 phone
#                      clip, truncated and 64-bit-size files
#   pymediainfo 6.1.0  H.264 + AAC sample.mp4 (audio outlasts video), an
#                      audio-only FLV, MPEG-4 Part 2 and VBR AAC files
#
# OUTDIR/manifest.txt lists: file package
set -euo pipefail

die() { echo "fetch-fixture-corpus: error: $*" >&2; exit 1; }
[[ $# -eq 1 ]] || die "usage: $0 OUTDIR"
outdir=$1
command -v python3 >/dev/null || die "python3 not found"
mkdir -p "$outdir"

# pip fetches from whatever index pip is configured for (PyPI or its mirror).
dl=$(mktemp -d)
trap 'rm -rf "$dl"' EXIT
python3 -m pip download -q --no-deps --no-binary :all: -d "$dl" \
  mutagen==1.47.0 pymediainfo==6.1.0 >/dev/null 2>"$dl/pip.log" \
  || { cat "$dl/pip.log" >&2; die "pip download failed (no access to the PyPI registry?)"; }

python3 - "$outdir" "$dl" <<'PY'
import hashlib, os, sys, tarfile

outdir, dl = sys.argv[1:3]
packages = [
    ("mutagen", "1.47.0", "719fadef0a978c31b4cf3c956261b3c58b6948b32023078a2117b1de09f0fc99"),
    ("pymediainfo", "6.1.0", "186a0b41a94524f0984d085ca6b945c79a254465b7097f2560dc0c04e8d1d8a5"),
]
media = (".mp4", ".m4a", ".m4b", ".m4v", ".mov", ".3gp", ".3g2", ".flv", ".f4v")
rows = []
for name, version, sha256 in packages:
    path = os.path.join(dl, "%s-%s.tar.gz" % (name, version))
    data = open(path, "rb").read()
    if hashlib.sha256(data).hexdigest() != sha256:
        sys.exit("fetch-fixture-corpus: %s %s: SHA-256 differs from the pinned one" % (name, version))
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            base = os.path.basename(m.name)
            if m.isfile() and "/tests/" in m.name and base.lower().endswith(media):
                out = "%s-%s" % (name, base)
                tmp = os.path.join(outdir, ".tmp." + out)
                with open(tmp, "wb") as f:
                    f.write(tar.extractfile(m).read())
                os.replace(tmp, os.path.join(outdir, out))
                rows.append("%s %s-%s" % (out, name, version))
tmp = os.path.join(outdir, ".manifest.tmp")
with open(tmp, "w") as f:
    f.write("# file package (scripts/fetch-fixture-corpus.sh)\n" + "\n".join(rows) + "\n")
os.replace(tmp, os.path.join(outdir, "manifest.txt"))
print("fetch-fixture-corpus: %d files + manifest.txt in %s" % (len(rows), outdir))
PY
