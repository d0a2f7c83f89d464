//! Walking an FLV file tag by tag: headers and the first body bytes only,
//! through a small read window. Used by the index and by the virtual head,
//! which both sit above it.

use crate::error::Result;
use crate::format::flv::tag::{parse_tag_header, TagHeader, TAG_HEADER_LEN};
use crate::source::{read_full_at, ByteSource};

/// Bytes read per refill when hopping between tag headers. Tags larger than
/// this are skipped without reading their bodies.
const WINDOW: usize = 16 * 1024;
/// Bytes read at a header reached by a long hop.
const SMALL_READ: usize = 64;
/// Header plus the body bytes that say what a tag carries.
pub(crate) const PEEK: usize = TAG_HEADER_LEN + 5;

/// What a visitor tells the walk.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Go,
    Stop,
}

/// Where a walk ended.
pub(crate) struct WalkEnd {
    /// Offset of the tag the visitor stopped at, or where tags ran out.
    pub stopped_at: u64,
    /// Where to go on when the visitor stopped the walk: the next tag.
    pub resume_at: Option<u64>,
}

/// Hops from tag header to tag header through a small read window.
pub(crate) struct TagWalker<'a> {
    src: &'a dyn ByteSource,
    buf: Vec<u8>,
    buf_start: u64,
    buf_len: usize,
}

impl<'a> TagWalker<'a> {
    pub(crate) fn new(src: &'a dyn ByteSource) -> Self {
        TagWalker {
            src,
            buf: vec![0; WINDOW],
            buf_start: 0,
            buf_len: 0,
        }
    }

    /// Up to `n` bytes at `offset` (fewer only at the end of the source).
    /// After a hop past more than a window (large tags), only the header
    /// region is read: big bodies are never read.
    fn bytes(&mut self, offset: u64, n: usize) -> Result<&[u8]> {
        let end = self.buf_start + self.buf_len as u64;
        if offset < self.buf_start || offset + n as u64 > end {
            let far = offset >= end && offset - end >= WINDOW as u64;
            let want = if far { SMALL_READ.max(n) } else { WINDOW };
            self.buf_len = read_full_at(self.src, offset, &mut self.buf[..want])?;
            self.buf_start = offset;
        }
        let at = (offset - self.buf_start) as usize;
        let take = n.min(self.buf_len.saturating_sub(at));
        Ok(&self.buf[at..at + take])
    }

    /// Visits whole tags from `pos` on. A tag that runs past the end of the
    /// source, or whose type is not audio, video or script, ends the walk.
    pub(crate) fn walk(
        &mut self,
        mut pos: u64,
        mut visit: impl FnMut(u64, &TagHeader, &[u8]) -> Step,
    ) -> Result<WalkEnd> {
        let size = self.src.size();
        loop {
            let b = self.bytes(pos, PEEK)?;
            if b.len() < TAG_HEADER_LEN {
                break;
            }
            let h = parse_tag_header(b);
            if !h.is_plausible() || pos + h.span() > size {
                break;
            }
            let body_len = (b.len() - TAG_HEADER_LEN).min(h.data_size as usize);
            let peek = &b[TAG_HEADER_LEN..TAG_HEADER_LEN + body_len];
            if visit(pos, &h, peek) == Step::Stop {
                return Ok(WalkEnd {
                    stopped_at: pos,
                    resume_at: Some(pos + h.span()),
                });
            }
            pos += h.span();
        }
        Ok(WalkEnd {
            stopped_at: pos,
            resume_at: None,
        })
    }
}
