//! Container formats: pure parsers over bytes. Each format lives in its own
//! module; code above this layer reaches a format only through
//! `index::MediaIndex`, so MP4 can join behind the same plan shape.

pub mod flv;

/// A container this library can serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Format {
    Flv = 1,
}

impl Format {
    /// Recognises a container from the first bytes of a file.
    pub fn sniff(head: &[u8]) -> Option<Format> {
        head.starts_with(b"FLV").then_some(Format::Flv)
    }

    /// The Content-Type a host should send.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Flv => "video/x-flv",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Flv => "flv",
        }
    }
}
