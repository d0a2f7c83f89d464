//! ISO BMFF box framing (ISO/IEC 14496-12 §4.2): headers with 32- or 64-bit
//! sizes, children bounded by their parent, and a bounds-checked big-endian
//! field reader. Every size and count is checked before it is trusted.

use byteorder::{BigEndian, ByteOrder};

use super::Mp4Error;

/// A box type, as its four bytes.
pub type FourCc = [u8; 4];

/// A box header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxHeader {
    pub kind: FourCc,
    /// Bytes of the header itself: 8, or 16 with a 64-bit size.
    pub header_len: u64,
    /// Bytes of the whole box, header included; `None` for size 0 ("to the
    /// end of the file"), which only a top-level box may use.
    pub size: Option<u64>,
}

/// Shows a box type for messages.
pub fn fourcc_str(kind: FourCc) -> String {
    kind.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

/// Reads a box header from the start of `bytes` (8 bytes, or 16 when the
/// size is 64-bit). Returns `None` when `bytes` is too short to tell.
pub fn parse_header(bytes: &[u8]) -> Result<Option<BoxHeader>, Mp4Error> {
    if bytes.len() < 8 {
        return Ok(None);
    }
    let size32 = BigEndian::read_u32(bytes);
    let kind: FourCc = bytes[4..8].try_into().expect("4 bytes");
    let (header_len, size) = match size32 {
        0 => (8, None),
        1 => {
            if bytes.len() < 16 {
                return Ok(None);
            }
            let large = BigEndian::read_u64(&bytes[8..16]);
            if large < 16 {
                return Err(Mp4Error::new(format!(
                    "box '{}' has a 64-bit size of {large}, smaller than its header",
                    fourcc_str(kind)
                )));
            }
            (16, Some(large))
        }
        2..=7 => {
            return Err(Mp4Error::new(format!(
                "box '{}' has size {size32}, smaller than its header",
                fourcc_str(kind)
            )))
        }
        n => (8, Some(u64::from(n))),
    };
    Ok(Some(BoxHeader {
        kind,
        header_len,
        size,
    }))
}

/// One child box inside a parent held in memory.
#[derive(Clone, Copy, Debug)]
pub struct Child<'a> {
    pub kind: FourCc,
    /// The whole box, header included.
    pub bytes: &'a [u8],
    /// The box's content after its header.
    pub payload: &'a [u8],
}

/// The children of a container's payload, in order. A child whose size
/// overflows the parent, or is 0, is an error.
pub struct Children<'a> {
    rest: &'a [u8],
    parent: FourCc,
}

pub fn children(payload: &[u8], parent: FourCc) -> Children<'_> {
    Children {
        rest: payload,
        parent,
    }
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<Child<'a>, Mp4Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let parent = fourcc_str(self.parent);
        let item = (|| {
            let header = parse_header(self.rest)?.ok_or_else(|| {
                Mp4Error::new(format!(
                    "{} stray bytes at the end of '{parent}'",
                    self.rest.len()
                ))
            })?;
            let size = header.size.ok_or_else(|| {
                Mp4Error::new(format!(
                    "box '{}' inside '{parent}' has size 0",
                    fourcc_str(header.kind)
                ))
            })?;
            if size > self.rest.len() as u64 {
                return Err(Mp4Error::new(format!(
                    "box '{}' ({size} bytes) overflows its parent '{parent}' ({} bytes left)",
                    fourcc_str(header.kind),
                    self.rest.len()
                )));
            }
            let (bytes, rest) = self.rest.split_at(size as usize);
            self.rest = rest;
            Ok(Child {
                kind: header.kind,
                bytes,
                payload: &bytes[header.header_len as usize..],
            })
        })();
        if item.is_err() {
            self.rest = &[];
        }
        Some(item)
    }
}

/// A big-endian field reader over one box's payload; reading past its end
/// is an error naming the box.
#[derive(Clone, Copy)]
pub struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
    kind: FourCc,
}

impl<'a> Fields<'a> {
    pub fn new(bytes: &'a [u8], kind: FourCc) -> Fields<'a> {
        Fields {
            bytes,
            pos: 0,
            kind,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Mp4Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                Mp4Error::new(format!(
                    "'{}' is truncated ({} bytes)",
                    fourcc_str(self.kind),
                    self.bytes.len()
                ))
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), Mp4Error> {
        self.take(n).map(|_| ())
    }

    pub fn u8(&mut self) -> Result<u8, Mp4Error> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, Mp4Error> {
        Ok(BigEndian::read_u16(self.take(2)?))
    }

    pub fn u32(&mut self) -> Result<u32, Mp4Error> {
        Ok(BigEndian::read_u32(self.take(4)?))
    }

    pub fn u64(&mut self) -> Result<u64, Mp4Error> {
        Ok(BigEndian::read_u64(self.take(8)?))
    }

    /// A FullBox's version and flags.
    pub fn version_flags(&mut self) -> Result<(u8, u32), Mp4Error> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }

    /// A 32- or 64-bit field, by the box version.
    pub fn u32_or_u64(&mut self, wide: bool) -> Result<u64, Mp4Error> {
        if wide {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        &self.bytes[self.pos..]
    }

    /// Checks that `count` entries of `entry_len` bytes fit in what is left,
    /// before anything is allocated for them.
    pub fn table(&self, count: u32, entry_len: usize) -> Result<&'a [u8], Mp4Error> {
        let need = (count as usize).checked_mul(entry_len);
        match need {
            Some(n) if n <= self.rest().len() => Ok(&self.rest()[..n]),
            _ => Err(Mp4Error::new(format!(
                "'{}' claims {count} entries of {entry_len} bytes but holds {}",
                fourcc_str(self.kind),
                self.rest().len()
            ))),
        }
    }
}
