#!/usr/bin/env python3
"""mp4craft: a small ISO BMFF (MP4 / QuickTime) box editor for test media.

The file is read into a tree of boxes, edited, and written back with every
box size recomputed. Chunk offsets (stco/co64) that pointed into an mdat
body are moved with that body, so edits that grow a moov in front of the
media, or split an mdat, keep the file playable.

  dump FILE              box tree with sizes and the key table counts
  facts FILE             one line of key=value facts (for scripts)
  to-co64 IN OUT         every stco rewritten as co64
  split-mdat IN OUT      the mdat split in two at a chunk boundary near its middle
  moov-between IN OUT    mdat #1, then the moov, then mdat #2
  to-stz2 IN OUT         one track's stsz as an equivalent stz2 (16-bit fields)
  split-edit IN OUT      the video's media edit as two that follow on (4 s, then
                         the rest): what editing applications write; the same
                         presentation
  skip-edit IN OUT       the video shows its media up to 4 s, then from 6 s on:
                         two media edits a cut cannot compose into one
  malformed IN OUTDIR    one broken file per shape + OUTDIR/malformed.txt

Standard library only.
"""
import copy
import os
import struct
import sys

# Boxes whose body is nothing but boxes.
CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf",
              b"udta", b"mvex", b"moof", b"traf", b"mfra", b"tref", b"sinf",
              b"schi", b"gmhd"}
# Our own reader must not recurse without bound on hostile files either.
MAX_DEPTH = 48
U32 = 0xFFFFFFFF
U64 = 0xFFFFFFFFFFFFFFFF


class BoxError(ValueError):
    pass


class Box:
    """One box: a container has `children`, a leaf keeps its `body` bytes.

    `pos` is where the box started in the input and `src` where its body
    started (the writer uses it to move chunk offsets into a moved mdat).
    `header`, when set, is written verbatim instead of a computed header:
    that is how the malformed shapes lie about a size.
    """

    def __init__(self, kind, body=b"", children=None, pos=None, src=None,
                 large=False, header=None):
        self.kind = kind
        self.body = body
        self.children = children
        self.pos = pos
        self.src = src
        self.large = large
        self.header = header
        self.note = None  # why the children could not be read (dump)

    def body_size(self):
        if self.children is not None:
            return sum(c.size() for c in self.children)
        return len(self.body)

    def header_bytes(self, body_size=None):
        if self.header is not None:
            return self.header
        n = self.body_size() if body_size is None else body_size
        if self.large or n + 8 > U32:
            return struct.pack(">I4sQ", 1, self.kind, n + 16)
        return struct.pack(">I4s", n + 8, self.kind)

    def size(self):
        n = self.body_size()  # once: asking twice per level would be exponential
        return len(self.header_bytes(n)) + n

    def encode(self, out):
        out.append(self.header_bytes())
        if self.children is not None:
            for c in self.children:
                c.encode(out)
        else:
            out.append(self.body)

    def child(self, kind):
        """The first child of this kind, or None."""
        for c in self.children or ():
            if c.kind == kind:
                return c
        return None

    def find(self, path):
        """The box at a slash-separated path below this one; BoxError if missing."""
        box = self
        for kind in path.split("/"):
            nxt = box.child(kind.encode())
            if nxt is None:
                raise BoxError("no %s below %s" % (kind, self.kind.decode(errors="replace")))
            box = nxt
        return box


# ----------------------------------------------------------------- reading --

def parse(data, start=0, end=None, depth=0, strict=True):
    """The boxes in data[start:end]. A bad header raises BoxError (strict),
    or ends the list with an '!err' pseudo box (for dump)."""
    end = len(data) if end is None else end
    boxes = []
    pos = start
    while pos < end:
        try:
            box, pos = _read_box(data, pos, end, depth)
        except BoxError as e:
            if strict:
                raise
            bad = Box(b"!err", pos=pos)
            bad.note = str(e)
            boxes.append(bad)
            break
        boxes.append(box)
    return boxes


def _read_box(data, pos, end, depth):
    if end - pos < 8:
        raise BoxError("%d stray bytes at %d" % (end - pos, pos))
    size, kind = struct.unpack_from(">I4s", data, pos)
    hdr = 8
    if size == 1:
        if end - pos < 16:
            raise BoxError("truncated largesize at %d" % pos)
        size = struct.unpack_from(">Q", data, pos + 8)[0]
        hdr = 16
    elif size == 0:  # "to the end of the enclosing space"
        size = end - pos
    if size < hdr or size > end - pos:
        raise BoxError("%r at %d: size %d outside %d..%d" % (kind, pos, size, hdr, end - pos))
    box = Box(kind, pos=pos, src=pos + hdr, large=hdr == 16)
    if kind in CONTAINERS:
        try:
            if depth >= MAX_DEPTH:
                raise BoxError("nested deeper than %d" % MAX_DEPTH)
            box.children = parse(data, pos + hdr, pos + size, depth + 1)
        except BoxError as e:
            box.note = str(e)  # kept as an opaque leaf
    if box.children is None:
        box.body = data[pos + hdr:pos + size]
    return box, pos + size


def load(path):
    with open(path, "rb") as f:
        return parse(f.read())


def walk(boxes):
    """Every box of the tree, parents first."""
    for b in boxes:
        yield b
        if b.children is not None:
            yield from walk(b.children)


def top_level(top, kind):
    found = [b for b in top if b.kind == kind]
    if len(found) != 1:
        raise BoxError("expected one top-level %s, found %d" % (kind.decode(), len(found)))
    return found[0]


def traks(top):
    return [b for b in top_level(top, b"moov").children if b.kind == b"trak"]


def handler(trak):
    return trak.find("mdia/hdlr").body[8:12]


def track(top, kind):
    """The first trak whose handler is `kind` (b'vide', b'soun')."""
    for t in traks(top):
        if handler(t) == kind:
            return t
    raise BoxError("no %s track" % kind.decode())


def stbl_of(trak):
    return trak.find("mdia/minf/stbl")


# ------------------------------------------------------------------ tables --
# Each reader takes a box body; writers return a new body. Readers trust the
# declared entry count only as far as the body really holds entries.

def full_header(version=0, flags=0):
    return struct.pack(">I", (version << 24) | flags)


def _count(body, at, width):
    declared = struct.unpack_from(">I", body, at)[0]
    return min(declared, (len(body) - at - 4) // width)


def read_offsets(box):
    width = 8 if box.kind == b"co64" else 4
    n = _count(box.body, 4, width)
    return list(struct.unpack_from(">%d%s" % (n, "Q" if width == 8 else "I"), box.body, 8))


def offsets_body(values, co64=False):
    fmt = ">%d%s" % (len(values), "Q" if co64 else "I")
    return full_header() + struct.pack(">I", len(values)) + struct.pack(fmt, *values)


def read_stsz(box):
    """(sample_size, sample_count, per-sample sizes or [] when uniform)."""
    b = box.body
    size, count = struct.unpack_from(">II", b, 4)
    if size:
        return size, count, []
    n = min(count, (len(b) - 12) // 4)
    return size, count, list(struct.unpack_from(">%dI" % n, b, 12))


def stsz_body(sizes):
    return full_header() + struct.pack(">II", 0, len(sizes)) + struct.pack(">%dI" % len(sizes), *sizes)


def read_stz2(box):
    b = box.body
    field, count = b[7], struct.unpack_from(">I", b, 8)[0]
    if field in (4, 8, 16):
        count = min(count, (len(b) - 12) * 8 // field)
    if field == 16:
        return list(struct.unpack_from(">%dH" % count, b, 12))
    if field == 8:
        return list(b[12:12 + count])
    if field == 4:
        out = []
        for i in range(count):
            byte = b[12 + i // 2]
            out.append(byte >> 4 if i % 2 == 0 else byte & 15)
        return out
    raise BoxError("stz2 field size %d" % field)


def sample_sizes(stbl):
    """Per-sample byte sizes of a track, from stsz or stz2."""
    box = stbl.child(b"stsz")
    if box is None:
        return read_stz2(stbl.find("stz2"))
    size, count, sizes = read_stsz(box)
    return [size] * count if size else sizes


def read_triples(box):  # stsc: (first_chunk, samples_per_chunk, sample_description_index)
    n = _count(box.body, 4, 12)
    flat = struct.unpack_from(">%dI" % (3 * n), box.body, 8)
    return [tuple(flat[i:i + 3]) for i in range(0, len(flat), 3)]


def triples_body(entries):
    flat = [v for e in entries for v in e]
    return full_header() + struct.pack(">I", len(entries)) + struct.pack(">%dI" % len(flat), *flat)


def read_pairs(box):
    """stts (count, delta) or ctts (count, offset; signed in version 1)."""
    n = _count(box.body, 4, 8)
    signed = box.kind == b"ctts" and box.body[0] == 1
    flat = struct.unpack_from(">" + ("Ii" if signed else "II") * n, box.body, 8)
    return [tuple(flat[i:i + 2]) for i in range(0, len(flat), 2)]


def pairs_body(entries, version=0):
    fmt = ">" + ("Ii" if version == 1 else "II") * len(entries)
    flat = [v for e in entries for v in e]
    return full_header(version) + struct.pack(">I", len(entries)) + struct.pack(fmt, *flat)


def read_u32_list(box):  # stss
    n = _count(box.body, 4, 4)
    return list(struct.unpack_from(">%dI" % n, box.body, 8))


def u32_list_body(values):
    return full_header() + struct.pack(">I", len(values)) + struct.pack(">%dI" % len(values), *values)


def read_elst(box):
    """[(segment_duration, media_time, rate)], media_time -1 = empty edit."""
    v = box.body[0]
    width = 20 if v == 1 else 12
    n = _count(box.body, 4, width)
    out = []
    for i in range(n):
        at = 8 + i * width
        if v == 1:
            dur, mt, ri, rf = struct.unpack_from(">QqhH", box.body, at)
        else:
            dur, mt, ri, rf = struct.unpack_from(">IihH", box.body, at)
        out.append((dur, mt, ri + rf / 65536))
    return out


def timescale_at(box):
    """Byte offset of the timescale field in an mvhd/mdhd body."""
    return 20 if box.body[0] == 1 else 12


def timescale(box):
    return struct.unpack_from(">I", box.body, timescale_at(box))[0]


def chunks(stbl):
    """(offset, byte length, first sample index) of every chunk of a track."""
    co = stbl.child(b"stco") or stbl.find("co64")
    offs = read_offsets(co)
    sizes = sample_sizes(stbl)
    runs = read_triples(stbl.find("stsc"))
    out = []
    sample = 0
    r = 0
    for i, off in enumerate(offs, 1):
        while r + 1 < len(runs) and runs[r + 1][0] <= i:
            r += 1
        n = runs[r][1]
        out.append((off, sum(sizes[sample:sample + n]), sample))
        sample += n
    return out


# ----------------------------------------------------------------- writing --

def relocate(top):
    """Moves every chunk offset that fell inside an mdat body read from the
    input to where that body now lands. Offsets outside every such body
    (faults injected on purpose) are left alone."""
    moves = []
    pos = 0
    for b in top:
        if b.kind == b"mdat" and b.src is not None and b.children is None:
            new = pos + len(b.header_bytes())
            moves.append((b.src, b.src + len(b.body), new))
        pos += b.size()
    if all(old == new for old, _, new in moves):
        return

    def moved(o):
        for start, end, new in moves:
            if start <= o < end:
                return o - start + new
        return o

    for box in walk(top):
        if box.kind in (b"stco", b"co64") and box.children is None and box.header is None:
            co64 = box.kind == b"co64"
            values = [moved(o) for o in read_offsets(box)]
            if not co64 and values and max(values) > U32:
                raise BoxError("a chunk offset no longer fits stco; use to-co64")
            fmt = ">%d%s" % (len(values), "Q" if co64 else "I")
            box.body = box.body[:8] + struct.pack(fmt, *values) + box.body[8 + struct.calcsize(fmt):]


def serialise(top):
    relocate(top)
    out = []
    for b in top:
        b.encode(out)
    return b"".join(out)


def write_file(path, data):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def save(top, path):
    write_file(path, serialise(top))


# -------------------------------------------------------------------- dump --

TABLES = {b"stsd", b"stts", b"ctts", b"stss", b"stsc", b"stco", b"co64", b"elst"}


def describe(box):
    """A short summary of the fields that matter for seeking, flagging an
    entry_count larger than the box holds."""
    text = _describe(box)
    if box.kind in TABLES:
        declared = struct.unpack_from(">I", box.body, 4)[0]
        if "entries=%d " % declared not in text + " ":
            text += " !! entry_count=%d" % declared
    return text


def _describe(box):
    b, k = box.body, box.kind
    if k == b"ftyp":
        brands = [b[i:i + 4].decode(errors="replace") for i in range(8, len(b), 4)]
        return "major=%s compatible=%s" % (b[:4].decode(errors="replace"), ",".join(brands))
    if k in (b"mvhd", b"mdhd"):
        v = b[0]
        dur = struct.unpack_from(">Q" if v == 1 else ">I", b, timescale_at(box) + 4)[0]
        return "v%d timescale=%d duration=%d" % (v, timescale(box), dur)
    if k == b"tkhd":
        return "v%d track_id=%d" % (b[0], struct.unpack_from(">I", b, 20 if b[0] == 1 else 12)[0])
    if k == b"hdlr":
        return "handler=%s" % b[8:12].decode(errors="replace")
    if k == b"stsd":
        n = struct.unpack_from(">I", b, 4)[0]
        first = b[12:16].decode(errors="replace") if len(b) >= 16 else "-"
        return "entries=%d first=%s" % (n, first)
    if k == b"stts":
        e = read_pairs(box)
        return "entries=%d samples=%d duration=%d" % (
            len(e), sum(c for c, _ in e), sum(c * d for c, d in e))
    if k == b"ctts":
        e = read_pairs(box)
        vals = [o for _, o in e] or [0]
        return "v%d entries=%d samples=%d offsets=%d..%d" % (
            b[0], len(e), sum(c for c, _ in e), min(vals), max(vals))
    if k == b"stss":
        e = read_u32_list(box)
        return "entries=%d %s" % (len(e), _head(e))
    if k == b"stsc":
        e = read_triples(box)
        return "entries=%d %s" % (len(e), _head(e, 4))
    if k == b"stsz":
        size, count, sizes = read_stsz(box)
        if size:
            return "uniform sample_size=%d count=%d" % (size, count)
        return "count=%d max=%d" % (count, max(sizes or [0]))
    if k == b"stz2":
        e = read_stz2(box)
        return "field_size=%d count=%d max=%d" % (b[7], len(e), max(e or [0]))
    if k in (b"stco", b"co64"):
        e = read_offsets(box)
        return "entries=%d %s" % (len(e), "%d..%d" % (e[0], e[-1]) if e else "")
    if k == b"elst":
        e = read_elst(box)
        return "v%d entries=%d %s" % (b[0], len(e), e)
    if k == b"trun":
        return "samples=%d" % struct.unpack_from(">I", b, 4)[0]
    return ""


def _head(values, n=6):
    shown = ",".join(str(v) for v in values[:n])
    return "[%s%s]" % (shown, ",..." if len(values) > n else "")


def dump(path):
    with open(path, "rb") as f:
        data = f.read()
    print("%s: %d bytes" % (path, len(data)))
    _dump(parse(data, strict=False), 1)


def _dump(boxes, depth):
    pad = "  " * depth
    for b in boxes:
        if b.kind == b"!err":
            print("%s!! %s" % (pad, b.note))
            continue
        try:
            info = describe(b) if b.children is None else ""
        except (struct.error, IndexError, ValueError, BoxError) as e:
            info = "(unreadable: %s)" % e
        name = b.kind.decode(errors="replace")
        print("%s%s @%d size=%d%s %s" % (pad, name, b.pos, b.size(),
                                         " (64-bit)" if b.large else "", info))
        if b.note:
            print("%s  !! children not read: %s" % (pad, b.note))
        if b.children is not None:
            _dump(b.children, depth + 1)


def facts(path):
    """key=value tokens the media script asserts on."""
    top = load(path)
    allb = list(walk(top))
    kinds = [b.kind for b in allb]
    empty_edit = any(mt == -1 for b in allb if b.kind == b"elst" for _, mt, _ in read_elst(b))
    ctts_v1 = any(b.kind == b"ctts" and b.body[0] == 1 for b in allb)
    uniform = any(b.kind == b"stsz" and read_stsz(b)[0] != 0 for b in allb)
    tracks = [handler(t).decode() for t in traks(top)]
    codecs = [stbl_of(t).find("stsd").body[12:16].decode(errors="replace") for t in traks(top)]
    sync = ["%s:%s" % (handler(t).decode(), "stss" if stbl_of(t).child(b"stss") else "none")
            for t in traks(top)]
    print(" ".join([
        "top=" + ",".join(b.kind.decode() for b in top),
        "tracks=" + ",".join(tracks),
        "codecs=" + ",".join(codecs),
        "sync=" + ",".join(sync),
        "stco=%d" % kinds.count(b"stco"),
        "co64=%d" % kinds.count(b"co64"),
        "stsz=%d" % kinds.count(b"stsz"),
        "stz2=%d" % kinds.count(b"stz2"),
        "ctts_v1=%d" % ctts_v1,
        "empty_edit=%d" % empty_edit,
        "uniform_stsz=%d" % uniform,
        "moof=%d" % kinds.count(b"moof"),
    ]))


# ---------------------------------------------------- valid transformations --

def the_mdat(top):
    return top_level(top, b"mdat")


def to_co64(src, dst):
    top = load(src)
    for box in walk(top):
        if box.kind == b"stco":
            box.body = offsets_body(read_offsets(box), co64=True)
            box.kind = b"co64"
    save(top, dst)


def _mid_chunk_split(top):
    """Splits the single mdat at the chunk start nearest its middle; returns
    (index of the first part in top, first part, second part)."""
    mdat = the_mdat(top)
    start, end = mdat.src, mdat.src + len(mdat.body)
    starts = sorted({off for t in traks(top) for off, _, _ in chunks(stbl_of(t))
                     if start < off < end})
    if not starts:
        raise BoxError("no chunk boundary inside the mdat")
    mid = start + (end - start) // 2
    cut = min(starts, key=lambda o: abs(o - mid))
    first = Box(b"mdat", mdat.body[:cut - start], src=start)
    second = Box(b"mdat", mdat.body[cut - start:], src=cut)
    return top.index(mdat), first, second


def split_mdat(src, dst):
    top = load(src)
    i, first, second = _mid_chunk_split(top)
    top[i:i + 1] = [first, second]
    save(top, dst)


def moov_between(src, dst):
    top = load(src)
    moov = top_level(top, b"moov")
    i, first, second = _mid_chunk_split(top)
    top.remove(moov)
    i = top.index(the_mdat(top))
    top[i:i + 1] = [first, moov, second]
    save(top, dst)


def elst_body(entries):
    """[(segment_duration, media_time, rate)] as a version 1 elst body."""
    out = full_header(1) + struct.pack(">I", len(entries))
    for dur, mt, rate in entries:
        out += struct.pack(">QqhH", dur, mt, int(rate), 0)
    return out


def _video_media_edit(top):
    """The video's elst box, its edits, the index of its one media edit,
    and the movie and media timescales."""
    t = track(top, b"vide")
    box = t.find("edts/elst")
    edits = read_elst(box)
    media = [i for i, e in enumerate(edits) if e[1] != -1]
    if len(media) != 1:
        raise BoxError("the video has %d media edits, not one" % len(media))
    return (box, edits, media[0], timescale(top_level(top, b"moov").find("mvhd")),
            timescale(t.find("mdia/mdhd")))


def split_edit(src, dst):
    top = load(src)
    box, edits, i, movie_ts, media_ts = _video_media_edit(top)
    dur, mt, rate = edits[i]
    head = 4 * movie_ts
    if dur <= head:
        raise BoxError("the media edit is not longer than 4 s")
    edits[i:i + 1] = [(head, mt, rate), (dur - head, mt + 4 * media_ts, rate)]
    box.body = elst_body(edits)
    save(top, dst)


def skip_edit(src, dst):
    top = load(src)
    box, edits, i, movie_ts, media_ts = _video_media_edit(top)
    dur, mt, rate = edits[i]
    if dur <= 6 * movie_ts:
        raise BoxError("the media edit is not longer than 6 s")
    edits[i:i + 1] = [(4 * movie_ts, mt, rate), (dur - 6 * movie_ts, mt + 6 * media_ts, rate)]
    box.body = elst_body(edits)
    save(top, dst)


def to_stz2(src, dst):
    """stsz -> stz2 (16-bit) on the first track whose sizes all fit, audio
    first (AAC frames are small); uniform-size tracks are skipped."""
    top = load(src)
    order = sorted(traks(top), key=lambda t: handler(t) != b"soun")
    for t in order:
        stbl = stbl_of(t)
        box = stbl.child(b"stsz")
        if box is None:
            continue
        uniform, count, sizes = read_stsz(box)
        if uniform or not sizes or max(sizes) > 0xFFFF:
            continue
        box.kind = b"stz2"
        # version/flags, 24 reserved bits, field_size, sample_count, entries
        box.body = (full_header() + b"\x00\x00\x00" + bytes([16])
                    + struct.pack(">I", count) + struct.pack(">%dH" % count, *sizes))
        save(top, dst)
        print("stz2 on the %s track (%d samples)" % (handler(t).decode(), count))
        return
    raise BoxError("no track has non-uniform sample sizes that fit 16 bits")


# --------------------------------------------------------------- malformed --
# Each shape takes a fresh copy of a valid moov-at-end (or faststart) file's
# tree and breaks exactly one thing; it returns the tree (written with the
# usual size and offset bookkeeping) or finished bytes. Modelled on the
# nginx mp4 module CVEs: CVE-2012-2089 (table counts vs box sizes),
# CVE-2018-16845 (atom sizes), CVE-2022-41741/41742 (duplicate atoms, stsc
# and stss contents), CVE-2024-7347 (stsc/stco bookkeeping past the end).

SHAPES = []


def shape(name, description):
    def register(fn):
        SHAPES.append((name, description, fn))
        return fn
    return register


def vstbl(top):
    return stbl_of(track(top, b"vide"))


def insert_after(parent, anchor, new):
    parent.children.insert(parent.children.index(anchor) + 1, new)


def total(top):
    return sum(b.size() for b in top)


def nested(kind, inner, levels):
    """`inner` wrapped in `levels` boxes of `kind`, built without recursion."""
    heads = [struct.pack(">I4s", len(inner) + 8 * (levels - i), kind) for i in range(levels)]
    return b"".join(heads) + inner


def encoded(box):
    out = []
    box.encode(out)
    return b"".join(out)


def set_stsc(stbl, edit):
    box = stbl.find("stsc")
    e = read_triples(box)
    edit(e)
    box.body = triples_body(e)


def set_stss(top, edit):
    box = vstbl(top).find("stss")
    e = read_u32_list(box)
    edit(e)
    box.body = u32_list_body(e)


def set_count(box, count):
    """Rewrites only the entry_count field of a table box."""
    box.body = box.body[:4] + struct.pack(">I", count) + box.body[8:]


def set_timescale(box, value):
    at = timescale_at(box)
    box.body = box.body[:at] + struct.pack(">I", value) + box.body[at + 4:]


# Duplicate boxes (CVE-2022-41741: a second atom overwrote the first one's
# table pointers while counts came from the other).

@shape("dup_stco", "video stbl has a second stco (1 entry) after the real one")
def _dup_stco(top):
    stbl = vstbl(top)
    real = stbl.find("stco")
    insert_after(stbl, real, Box(b"stco", offsets_body(read_offsets(real)[:1])))
    return top


@shape("dup_stsz", "video stbl has a second stsz (1 sample) after the real one")
def _dup_stsz(top):
    stbl = vstbl(top)
    real = stbl.find("stsz")
    insert_after(stbl, real, Box(b"stsz", stsz_body(read_stsz(real)[2][:1])))
    return top


@shape("dup_mdhd", "video mdia has a second mdhd (timescale 1) after the real one")
def _dup_mdhd(top):
    mdia = track(top, b"vide").find("mdia")
    real = mdia.find("mdhd")
    extra = copy.deepcopy(real)
    set_timescale(extra, 1)
    insert_after(mdia, real, extra)
    return top


@shape("dup_moov", "a second, identical moov box at top level after the first")
def _dup_moov(top):
    moov = top_level(top, b"moov")
    top.insert(top.index(moov) + 1, copy.deepcopy(moov))
    return top


@shape("moov_no_trak", "moov holds mvhd but no trak")
def _moov_no_trak(top):
    moov = top_level(top, b"moov")
    moov.children = [c for c in moov.children if c.kind != b"trak"]
    return top


# stsc contents (CVE-2022-41742, CVE-2024-7347).

@shape("stsc_first_chunk_0", "video stsc entry 1 has first_chunk 0 (chunks count from 1)")
def _stsc_first_chunk_0(top):
    set_stsc(vstbl(top), lambda e: e.__setitem__(0, (0,) + e[0][1:]))
    return top


@shape("stsc_out_of_order", "audio stsc entries 2 and 3 swapped: first_chunk decreases")
def _stsc_out_of_order(top):
    # Audio: ffmpeg's interleaving gives its stsc many entries, video's two.
    def swap(e):
        if len(e) < 3:
            raise BoxError("audio stsc has fewer than 3 entries")
        e[1], e[2] = e[2], e[1]
    set_stsc(stbl_of(track(top, b"soun")), swap)
    return top


@shape("stsc_samples_per_chunk_0", "video stsc entry 1 has samples_per_chunk 0")
def _stsc_spc_0(top):
    set_stsc(vstbl(top), lambda e: e.__setitem__(0, (e[0][0], 0, e[0][2])))
    return top


@shape("stsc_samples_per_chunk_max", "video stsc entry 1 has samples_per_chunk 0xFFFFFFFF")
def _stsc_spc_max(top):
    set_stsc(vstbl(top), lambda e: e.__setitem__(0, (e[0][0], U32, e[0][2])))
    return top


@shape("stsc_sdi_0", "video stsc entry 1 has sample_description_index 0 (1-based)")
def _stsc_sdi_0(top):
    set_stsc(vstbl(top), lambda e: e.__setitem__(0, e[0][:2] + (0,)))
    return top


@shape("stsc_sdi_past_stsd", "video stsc entry 1 has sample_description_index 2, stsd has 1 entry")
def _stsc_sdi_2(top):
    set_stsc(vstbl(top), lambda e: e.__setitem__(0, e[0][:2] + (2,)))
    return top


# stss contents.

@shape("stss_entry_0", "video stss entry 1 is sample 0 (samples count from 1)")
def _stss_0(top):
    set_stss(top, lambda e: e.__setitem__(0, 0))
    return top


@shape("stss_entry_past_count", "video stss last entry is sample_count + 1")
def _stss_past(top):
    n = len(sample_sizes(vstbl(top)))
    set_stss(top, lambda e: e.__setitem__(-1, n + 1))
    return top


@shape("stss_not_increasing", "video stss entries 2 and 3 swapped")
def _stss_order(top):
    def swap(e):
        if len(e) < 3:
            raise BoxError("video stss has fewer than 3 entries")
        e[1], e[2] = e[2], e[1]
    set_stss(top, swap)
    return top


# Table counts versus box sizes and versus each other (CVE-2012-2089).

@shape("stco_empty", "video stco has 0 entries while stsz lists samples")
def _stco_empty(top):
    vstbl(top).find("stco").body = offsets_body([])
    return top


@shape("stco_count_past_box", "video stco entry_count is 1000 more than the box holds")
def _stco_count(top):
    box = vstbl(top).find("stco")
    set_count(box, len(read_offsets(box)) + 1000)
    return top


@shape("stco_count_wraps", "video stco entry_count 0x40000000 (count*4 wraps 32 bits to 0)")
def _stco_wrap(top):
    set_count(vstbl(top).find("stco"), 0x40000000)
    return top


@shape("stsz_count_huge", "video stsz sample_count 0xFFFFFFFF in a box of a few hundred entries")
def _stsz_huge(top):
    box = vstbl(top).find("stsz")
    box.body = box.body[:8] + struct.pack(">I", U32) + box.body[12:]
    return top


@shape("stsz_count_mismatch", "video stsz lists one sample fewer than stts (box consistent)")
def _stsz_short(top):
    box = vstbl(top).find("stsz")
    box.body = stsz_body(read_stsz(box)[2][:-1])
    return top


@shape("stts_count_huge", "video stts entry_count 0xFFFFFFFF in a small box")
def _stts_huge(top):
    set_count(vstbl(top).find("stts"), U32)
    return top


@shape("stts_duration_overflow",
       "video stts is 4 entries of count 0xFFFFFFFF delta 0xFFFFFFFF (sum of count*delta overflows 64 bits)")
def _stts_overflow(top):
    vstbl(top).find("stts").body = pairs_body([(U32, U32)] * 4)
    return top


@shape("stts_count_wraps_u32",
       "video stts counts sum to 2^32 + sample_count (right only modulo 2^32)")
def _stts_wrap(top):
    box = vstbl(top).find("stts")
    n = len(sample_sizes(vstbl(top)))
    delta = read_pairs(box)[0][1]
    box.body = pairs_body([(U32, delta), (n + 1, delta)])
    return top


@shape("ctts_count_mismatch", "video ctts covers 10 samples more than the track has")
def _ctts_long(top):
    box = vstbl(top).find("ctts")
    e = read_pairs(box)
    e[-1] = (e[-1][0] + 10, e[-1][1])
    box.body = pairs_body(e, version=box.body[0])
    return top


@shape("elst_count_huge", "video elst entry_count 0xFFFFFFFF in a one-entry box")
def _elst_huge(top):
    set_count(track(top, b"vide").find("edts/elst"), U32)
    return top


# Chunks outside the file.

@shape("chunk_offset_past_eof", "last video chunk offset is 4096 bytes past the end of the file")
def _chunk_past(top):
    box = vstbl(top).find("stco")
    e = read_offsets(box)
    e[-1] = total(top) + 4096
    box.body = offsets_body(e)
    return top


@shape("chunk_data_past_eof", "last video chunk starts inside the file but its samples run past EOF")
def _chunk_runs_past(top):
    stbl = vstbl(top)
    box = stbl.find("stco")
    e = read_offsets(box)
    length = chunks(stbl)[-1][1]
    if length < 2:
        raise BoxError("last video chunk too small")
    e[-1] = total(top) - length // 2
    box.body = offsets_body(e)
    return top


@shape("co64_offset_max", "video stco as co64 (valid) with the last offset 2^64-16 (offset+size overflows)")
def _co64_max(top):
    box = vstbl(top).find("stco")
    e = read_offsets(box)
    e[-1] = U64 - 15
    box.kind, box.body = b"co64", offsets_body(e, co64=True)
    return top


# Box headers (CVE-2018-16845 and generic robustness).

@shape("truncated_moov", "file cut in the middle of the moov")
def _truncated(top):
    moov = top_level(top, b"moov")
    data = serialise(top)
    start = sum(b.size() for b in top[:top.index(moov)])
    return data[:start + moov.size() // 2]


@shape("trak_overflows_moov", "first trak's size runs 8 bytes past the end of its moov")
def _trak_big(top):
    moov = top_level(top, b"moov")
    trak = traks(top)[0]
    after = sum(c.size() for c in moov.children[moov.children.index(trak) + 1:])
    trak.header = struct.pack(">I4s", trak.size() + after + 8, b"trak")
    return top


@shape("box_size_4_inner", "video stsd header says size 4 (less than its own header)")
def _size4(top):
    vstbl(top).find("stsd").header = struct.pack(">I4s", 4, b"stsd")
    return top


@shape("box_size_7_moov", "top-level moov header says size 7")
def _size7(top):
    top_level(top, b"moov").header = struct.pack(">I4s", 7, b"moov")
    return top


@shape("largesize_small", "video mdhd has size 1 and a 64-bit largesize of 12 (less than 16)")
def _large_small(top):
    track(top, b"vide").find("mdia/mdhd").header = struct.pack(">I4sQ", 1, b"mdhd", 12)
    return top


@shape("largesize_moov_max", "moov has a 64-bit largesize of 2^64-1 (position+size overflows)")
def _large_moov(top):
    top_level(top, b"moov").header = struct.pack(">I4sQ", 1, b"moov", U64)
    return top


@shape("largesize_mdat_past_eof",
       "mdat has a 64-bit header (offsets moved by 8) whose largesize is twice the file size")
def _large_mdat(top):
    mdat = the_mdat(top)
    size = total(top) + 8
    mdat.header = struct.pack(">I4sQ", 1, b"mdat", 2 * size)
    return top


@shape("size0_inner", "video tkhd has size 0 ('to end of file') though it is not the last box")
def _size0(top):
    tkhd = track(top, b"vide").find("tkhd")
    tkhd.header = struct.pack(">I4s", 0, b"tkhd")
    return top


def _deep(levels):
    def wrap(top):
        trak = track(top, b"vide")
        mdia = trak.find("mdia")
        blob = Box(b"mdia", nested(b"mdia", encoded(mdia), levels), header=b"")
        trak.children[trak.children.index(mdia)] = blob
        return top
    return wrap


shape("deep_nesting_1000", "video mdia wrapped in 1000 more mdia boxes")(_deep(1000))
shape("deep_nesting_100000", "video mdia wrapped in 100000 more mdia boxes (800 KB of headers)")(_deep(100000))


# Values that make times or tables meaningless.

@shape("mdhd_timescale_0", "video mdhd timescale 0")
def _mdhd0(top):
    set_timescale(track(top, b"vide").find("mdia/mdhd"), 0)
    return top


@shape("mvhd_timescale_0", "mvhd timescale 0")
def _mvhd0(top):
    set_timescale(top_level(top, b"moov").find("mvhd"), 0)
    return top


@shape("stsd_missing", "video stbl has no stsd")
def _no_stsd(top):
    stbl = vstbl(top)
    stbl.children.remove(stbl.find("stsd"))
    return top


@shape("stsd_count_0", "video stsd entry_count 0 and no entries")
def _stsd0(top):
    vstbl(top).find("stsd").body = full_header() + struct.pack(">I", 0)
    return top


# Whole-file shapes.

@shape("no_moov", "ftyp, free and mdat only")
def _no_moov(top):
    return [b for b in top if b.kind != b"moov"]


@shape("ftyp_only", "an ftyp box and nothing else")
def _ftyp_only(top):
    return [top_level(top, b"ftyp")]


def malformed(src, outdir):
    top = load(src)
    # The shapes edit these; fail here rather than with a half-written set.
    for path in ("mdia/mdhd", "mdia/minf/stbl/stco", "mdia/minf/stbl/stss",
                 "mdia/minf/stbl/ctts", "mdia/minf/stbl/stsz", "edts/elst"):
        track(top, b"vide").find(path)
    if top.index(top_level(top, b"moov")) < top.index(the_mdat(top)):
        print("note: moov before mdat; offsets are fixed up for every shape")
    os.makedirs(outdir, exist_ok=True)
    lines = []
    for name, description, fn in SHAPES:
        out = fn(copy.deepcopy(top))
        data = out if isinstance(out, bytes) else serialise(out)
        fname = name + ".mp4"
        write_file(os.path.join(outdir, fname), data)
        lines.append("%s %s" % (fname, description))
    write_file(os.path.join(outdir, "malformed.txt"), ("\n".join(lines) + "\n").encode())
    print("%d malformed files in %s" % (len(lines), outdir))


# -------------------------------------------------------------------- main --

COMMANDS = {
    "dump": (dump, 1),
    "facts": (facts, 1),
    "to-co64": (to_co64, 2),
    "split-mdat": (split_mdat, 2),
    "moov-between": (moov_between, 2),
    "to-stz2": (to_stz2, 2),
    "split-edit": (split_edit, 2),
    "skip-edit": (skip_edit, 2),
    "malformed": (malformed, 2),
}


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS or len(argv) != COMMANDS[argv[1]][1] + 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    fn = COMMANDS[argv[1]][0]
    try:
        fn(*argv[2:])
    except (BoxError, struct.error, OSError) as e:
        print("mp4craft %s: error: %s" % (argv[1], e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
