//! A stream over a plan's body: one response, or one window of it, handed
//! to the host under an optional pacer, either as pieces to send zero-copy
//! (`take`) or copied into the host's buffers (`fill`). No clock reads; no
//! allocation per call once the first batch has sized its copy buffer.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::pacer::{Allowance, Pacer};
use crate::plan::body::{Body, Piece, GENERATED_MAX};
use crate::plan::Plan;
use crate::source::{read_full_at, ByteSource};

/// Pieces shorter than this, in a body made of many (an MP4 made from an
/// FLV: a file piece per sample; a fragmented cut: file pieces between
/// rewritten fields), are copied into one buffer and handed out as one
/// piece: a write of a few kilobytes each costs more than the copy.
const GATHER_BELOW: u64 = 16 * 1024;
/// Room for such copies per batch, at most.
const GATHER_CAP: usize = 512 * 1024;

/// A time that takes what is left without pacing: for output that goes to
/// no client of its own (an nginx subrequest writes into its parent's
/// response, which has the pace).
pub const NOW_UNPACED: u64 = u64::MAX;

/// What one `fill` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// This many bytes were written to the buffer.
    Data(usize),
    /// Ahead of schedule: call again after this many microseconds.
    Wait(u64),
    /// Everything has been delivered.
    Done,
}

/// What one `take` handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// This many pieces, holding this many bytes.
    Pieces(usize, u64),
    /// Ahead of schedule: call again after this many microseconds.
    Wait(u64),
    /// Everything has been delivered.
    Done,
}

/// A piece of a batch not yet handed out.
#[derive(Clone, Copy)]
enum Pending {
    File {
        offset: u64,
        len: u64,
    },
    /// Bytes of a listed part of the body, at this body position.
    Listed {
        pos: u64,
        len: u64,
    },
    /// `gather[from..to]`: copies of small pieces, in order.
    Copied(usize, usize),
}

impl Pending {
    fn piece<'a>(self, body: &'a Body, gather: &'a [u8]) -> Piece<'a> {
        match self {
            Pending::File { offset, len } => Piece::File { offset, len },
            Pending::Listed { pos, len } => body.listed_piece_at(pos, pos + len),
            Pending::Copied(from, to) => Piece::Bytes(&gather[from..to]),
        }
    }
}

/// Produces one response (or one window of it, for a Range request).
pub struct Stream {
    source: Arc<dyn ByteSource>,
    body: Body,
    pos: u64,
    end: u64,
    pacer: Pacer,
    /// Past the burst, batches that end inside a file piece end on a
    /// multiple of this in the file (0: anywhere).
    page: u64,
    /// Small file pieces of the last batch, copied (`GATHER_BELOW`).
    gather: Vec<u8>,
}

impl Stream {
    /// A stream of `len` bytes from `first` of `plan`'s response, paced as
    /// the plan says.
    pub(crate) fn new(
        source: Arc<dyn ByteSource>,
        plan: &Plan,
        first: u64,
        len: u64,
    ) -> Result<Stream> {
        Stream::over(
            source,
            plan.body.clone(),
            first,
            len,
            Pacer::new(plan.burst_bytes, plan.rate_bytes_per_s),
        )
    }

    /// A stream of `len` bytes from `first` of `body`.
    pub(crate) fn over(
        source: Arc<dyn ByteSource>,
        body: Body,
        first: u64,
        len: u64,
        pacer: Pacer,
    ) -> Result<Stream> {
        let end = first
            .checked_add(len)
            .filter(|&e| e <= body.len())
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "window {first}+{len} outside a response of {} bytes",
                    body.len()
                ))
            })?;
        Ok(Stream {
            source,
            body,
            pos: first,
            end,
            pacer,
            page: 0,
            gather: Vec::new(),
        })
    }

    /// The body the stream sends a window of.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The window still to come: its first byte in the body and its length.
    pub fn window(&self) -> (u64, u64) {
        (self.pos, self.end - self.pos)
    }

    /// Bytes still to come.
    pub fn remaining(&self) -> u64 {
        self.end - self.pos
    }

    /// Replaces the pacing the plan gave (the library's policy, see
    /// `Response`); for tools and tests, hosts have no need of it.
    pub fn set_pacing(&mut self, burst_bytes: u64, rate_bytes_per_s: u64) {
        self.pacer = Pacer::new(burst_bytes, rate_bytes_per_s);
    }

    pub fn is_paced(&self) -> bool {
        self.pacer.is_paced()
    }

    /// The pacing: bytes sent at once, then bytes per second (0: unpaced).
    pub fn burst_bytes(&self) -> u64 {
        self.pacer.burst_bytes()
    }

    pub fn rate(&self) -> u64 {
        self.pacer.rate()
    }

    /// For hosts that send file pieces with sendfile: past the burst, a
    /// batch that ends inside a file piece ends on a multiple of `page`
    /// there (when that leaves some of the piece), and what it leaves goes
    /// with the next batch. Linux sendfile pushes a piece that starts in the
    /// middle of a page in two writes, and flv.js 1.6 and mpegts.js 1.8 keep
    /// back a read that ends on a lone FLV tag, across a seek too. The
    /// schedule is unchanged. 0 turns it off.
    pub fn align_file_pages(&mut self, page: u64) {
        self.page = if page > 1 { page } else { 0 };
    }

    /// How many bytes may go now, at most `cap`. `NOW_UNPACED` as the time
    /// lets everything go.
    fn allowance(&mut self, now_us: u64, cap: u64) -> std::result::Result<u64, Fill> {
        let remaining = self.remaining();
        if remaining == 0 {
            return Err(Fill::Done);
        }
        let want = remaining.min(cap);
        if now_us == NOW_UNPACED {
            return Ok(want);
        }
        match self.pacer.allow_within(now_us, remaining, cap) {
            Allowance::Send(n) => Ok(n.min(want)),
            Allowance::Wait(us) => Err(Fill::Wait(us)),
        }
    }

    /// Hands out the next pieces as far as pacing allows at `now_us`, at
    /// most `max_pieces` of them, to `each`. Bytes of `Piece::Bytes` stay
    /// valid until the next call or the stream's end, so the host sends all
    /// of a batch before it asks for the next.
    pub fn take_each(
        &mut self,
        now_us: u64,
        max_pieces: usize,
        mut each: impl FnMut(Piece<'_>),
    ) -> Result<Take> {
        if max_pieces == 0 {
            return Err(Error::InvalidArgument("no room for pieces".into()));
        }
        let allowed = match self.allowance(now_us, u64::MAX) {
            Ok(n) => n,
            Err(Fill::Wait(us)) => return Ok(Take::Wait(us)),
            Err(_) => return Ok(Take::Done),
        };
        let align = self.page > 0
            && self.pacer.is_paced()
            && allowed < self.remaining()
            && self.pacer.sent() >= self.pacer.burst_bytes();
        // Small pieces of a body with generated runs are copied, as many as
        // fit, into one piece; a body of listed parts goes as it is.
        let listed = self.body.is_listed();
        // The host has sent the last batch: its copies may go. The buffer
        // never grows within a batch, so what a batch hands out stays put;
        // it is as large as a batch may be (a paced one is small).
        self.gather.clear();
        let room = allowed.min(GATHER_CAP as u64) as usize;
        if !listed && self.gather.capacity() < room {
            self.gather.reserve_exact(room);
        }
        let (body, source, gather) = (&self.body, &self.source, &mut self.gather);
        let limit = self.pos + allowed;
        let mut pos = self.pos;
        let mut count = 0;
        // Each piece goes out one step late: the last one may be cut to a
        // page once it is known to be the last, and copies run on.
        let mut pending: Option<Pending> = None;
        while pos < limit {
            let mut slot = [0u8; GENERATED_MAX];
            let piece = if listed {
                body.listed_piece_at(pos, limit)
            } else {
                body.piece_at(pos, limit, &mut slot)
            };
            let len = piece.len();
            let small = !listed && len < GATHER_BELOW;
            let joins = small && matches!(pending, Some(Pending::Copied(..)));
            if !joins && count + usize::from(pending.is_some()) >= max_pieces {
                break;
            }
            if small && gather.len() + len as usize > gather.capacity() {
                // The copies are full: the rest goes with the next batch.
                break;
            }
            let next = match piece {
                Piece::File { offset, len } if small => {
                    let at = gather.len();
                    gather.resize(at + len as usize, 0);
                    if read_full_at(&**source, offset, &mut gather[at..])? < len as usize {
                        return Err(Error::SourceChanged(
                            "the file ended before the planned bytes".into(),
                        ));
                    }
                    Pending::Copied(at, gather.len())
                }
                Piece::Bytes(b) if small => {
                    let at = gather.len();
                    gather.extend_from_slice(b);
                    Pending::Copied(at, gather.len())
                }
                Piece::File { offset, len } => Pending::File { offset, len },
                // Only listed parts hold more bytes than a generated field.
                Piece::Bytes(_) => Pending::Listed { pos, len },
            };
            pos += len;
            pending = match (pending.take(), next) {
                (Some(Pending::Copied(from, _)), Pending::Copied(_, to)) => {
                    Some(Pending::Copied(from, to))
                }
                (previous, next) => {
                    if let Some(p) = previous {
                        each(p.piece(body, gather));
                        count += 1;
                    }
                    Some(next)
                }
            };
        }
        if let Some(last) = pending {
            let mut last = last.piece(body, gather);
            if let (true, true, Piece::File { offset, len }) = (align, pos == limit, &mut last) {
                let end = *offset + *len;
                let aligned = end - end % self.page;
                if aligned > *offset {
                    pos -= end - aligned;
                    *len = aligned - *offset;
                }
            }
            each(last);
            count += 1;
        }
        let n = pos - self.pos;
        self.pos = pos;
        self.pacer.consume(n);
        Ok(Take::Pieces(count, n))
    }

    /// Fills `buf` as far as pacing allows at `now_us` (a monotonic clock in
    /// microseconds; any origin). A file that ends before the planned range
    /// does is an error (`SourceChanged`), never a short success.
    pub fn fill(&mut self, buf: &mut [u8], now_us: u64) -> Result<Fill> {
        if buf.is_empty() && self.remaining() > 0 {
            return Err(Error::InvalidArgument("empty buffer".into()));
        }
        let allowed = match self.allowance(now_us, buf.len() as u64) {
            Ok(n) => n as usize,
            Err(f) => return Ok(f),
        };
        let mut written = 0;
        let mut scratch = [0u8; GENERATED_MAX];
        while written < allowed {
            let limit = self.pos + (allowed - written) as u64;
            let piece = self.body.piece_at(self.pos, limit, &mut scratch);
            let n = match piece {
                Piece::Bytes(b) => {
                    buf[written..written + b.len()].copy_from_slice(b);
                    b.len()
                }
                Piece::File { offset, len } => {
                    let target = &mut buf[written..written + len as usize];
                    let n = loop {
                        match self.source.read_at(offset, target) {
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                            other => break other?,
                        }
                    };
                    if n == 0 {
                        return Err(Error::SourceChanged(format!(
                            "source ended at byte {offset} before the planned {}",
                            offset + len
                        )));
                    }
                    n
                }
            };
            written += n;
            self.pos += n as u64;
            self.pacer.consume(n as u64);
            // A short read: hand over what there is.
            if matches!(piece, Piece::File { len, .. } if (n as u64) < len) {
                break;
            }
        }
        Ok(Fill::Data(written))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fnv::Fnv;
    use crate::plan::body::{Part, PatchedFile, Patches};
    use crate::source::MemorySource;

    /// Every hundredth byte of a range replaced by 0xee.
    #[derive(Debug)]
    struct EveryHundredth;

    impl Patches for EveryHundredth {
        fn first_ending_after(
            &self,
            at: u64,
            out: &mut [u8; GENERATED_MAX],
        ) -> Option<(u64, usize)> {
            out[0] = 0xee;
            Some((at.div_ceil(100) * 100, 1))
        }

        fn digest(&self, h: &mut Fnv) {
            h.write(b"hundredth");
        }
    }

    /// Drains a stream; returns its bytes and how many pieces it took.
    fn drain(stream: &mut Stream, file: &[u8], per_batch: usize) -> (Vec<u8>, usize) {
        let (mut out, mut pieces) = (Vec::new(), 0);
        while let Take::Pieces(..) = stream
            .take_each(NOW_UNPACED, per_batch, |p| {
                pieces += 1;
                match p {
                    Piece::Bytes(b) => out.extend_from_slice(b),
                    Piece::File { offset, len } => {
                        out.extend_from_slice(&file[offset as usize..(offset + len) as usize])
                    }
                }
            })
            .unwrap()
        {}
        (out, pieces)
    }

    #[test]
    fn small_pieces_of_a_run_go_out_copied_together() {
        let file: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
        let source: Arc<dyn ByteSource> = Arc::new(MemorySource::new(file.clone()));
        let mut body = Body::new();
        body.push(Part::Bytes(vec![1, 2, 3].into()));
        body.push(Part::Run(Arc::new(PatchedFile {
            from: 0,
            to: 300_000,
            patches: EveryHundredth,
        })));
        body.push(Part::File {
            from: 300_000,
            to: 400_000,
        });
        let mut want = vec![1, 2, 3];
        want.extend((0..300_000).map(|o| if o % 100 == 0 { 0xee } else { file[o] }));
        want.extend_from_slice(&file[300_000..]);
        for per_batch in [1, 7, 1000, 100_000] {
            let mut stream = Stream::over(
                Arc::clone(&source),
                body.clone(),
                0,
                body.len(),
                Pacer::new(0, 0),
            )
            .unwrap();
            let (got, pieces) = drain(&mut stream, &file, per_batch);
            assert!(got == want, "{per_batch} pieces a batch: bytes differ");
            if per_batch >= 1000 {
                // 6,000 pieces of 1 and 99 bytes become a copy per batch or
                // per 128 KiB; the large file piece at the end goes as it is.
                let copies = 6_000 / per_batch + 300_000 / GATHER_CAP + 2;
                assert!(pieces <= copies + 2, "{per_batch} a batch: {pieces} pieces");
            }
        }
    }
}
