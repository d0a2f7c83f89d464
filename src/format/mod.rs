//! Container formats: pure parsers and writers over bytes, and the neutral
//! sample model (`samples`) sources are read into and outputs written from. Each format lives in its own
//! module; code above this layer reaches a format only through
//! `index::MediaIndex`, behind one plan shape.

pub mod flv;
pub mod mp4;
pub mod nal;
pub mod samples;

/// A container this library can serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Format {
    Flv = 1,
    /// MP4, QuickTime and the other ISO BMFF files (.mp4, .m4v, .m4a, .mov).
    Mp4 = 2,
}

impl Format {
    /// Recognises a container from the first bytes of a file.
    pub fn sniff(head: &[u8]) -> Option<Format> {
        if head.starts_with(b"FLV") {
            Some(Format::Flv)
        } else if mp4::sniff(head) {
            Some(Format::Mp4)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Flv => "flv",
            Format::Mp4 => "mp4",
        }
    }
}
