//! MP4 / QuickTime (ISO BMFF): box framing, the `moov` and its sample
//! tables, movie fragments, and the writer for the boxes a cut rewrites.
//! Pure: bytes in, values out. Tables are checked against their box sizes
//! before anything is allocated for them.

pub mod boxes;
pub mod fragment;
pub mod moov;
pub mod progressive;
pub mod relocate;
pub mod tables;
pub mod write;

/// Why MP4 bytes could not be used. Becomes `Error::Malformed` (415).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Mp4Error(pub String);

impl Mp4Error {
    pub fn new(msg: impl Into<String>) -> Mp4Error {
        Mp4Error(msg.into())
    }
}

impl From<Mp4Error> for crate::error::Error {
    fn from(e: Mp4Error) -> Self {
        crate::error::Error::Malformed(e.0)
    }
}

/// Top-level box types that make a file recognisable as ISO BMFF when the
/// file does not open with `ftyp` (old QuickTime files).
const TOP_LEVEL_KINDS: [&[u8; 4]; 9] = [
    b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"styp", b"uuid",
];

/// Whether the first bytes of a file look like ISO BMFF.
pub fn sniff(head: &[u8]) -> bool {
    head.len() >= 8 && TOP_LEVEL_KINDS.iter().any(|k| &head[4..8] == *k)
}
