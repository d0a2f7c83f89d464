//! Writing boxes: open a box, write its content, close it to patch its size.

use byteorder::{BigEndian, ByteOrder};

use super::boxes::FourCc;

/// An output buffer of boxes.
#[derive(Default)]
pub struct BoxWriter {
    pub out: Vec<u8>,
}

/// An open box: where its header starts.
#[must_use]
pub struct Open(usize);

impl BoxWriter {
    pub fn with_capacity(n: usize) -> BoxWriter {
        BoxWriter {
            out: Vec::with_capacity(n),
        }
    }

    pub fn open(&mut self, kind: FourCc) -> Open {
        let at = self.out.len();
        self.out.extend_from_slice(&[0, 0, 0, 0]);
        self.out.extend_from_slice(&kind);
        Open(at)
    }

    /// Opens a FullBox.
    pub fn open_full(&mut self, kind: FourCc, version: u8, flags: u32) -> Open {
        let b = self.open(kind);
        self.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        b
    }

    /// Closes a box. Boxes a moov holds are far below 4 GiB; the moov's own
    /// size is checked by the caller.
    pub fn close(&mut self, b: Open) {
        let size = (self.out.len() - b.0) as u32;
        BigEndian::write_u32(&mut self.out[b.0..b.0 + 4], size);
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }

    pub fn u8(&mut self, v: u8) {
        self.out.push(v);
    }

    pub fn u16(&mut self, v: u16) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    pub fn i32(&mut self, v: i32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    pub fn i64(&mut self, v: i64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    pub fn len(&self) -> usize {
        self.out.len()
    }

    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }
}

/// An `mdat` header for `payload` bytes: 8 bytes, or 16 with a 64-bit size.
pub fn mdat_header(payload: u64) -> Vec<u8> {
    match u32::try_from(payload + 8) {
        Ok(size) => {
            let mut h = size.to_be_bytes().to_vec();
            h.extend_from_slice(b"mdat");
            h
        }
        Err(_) => {
            let mut h = vec![0, 0, 0, 1];
            h.extend_from_slice(b"mdat");
            h.extend_from_slice(&(payload + 16).to_be_bytes());
            h
        }
    }
}

/// Rewrites the duration field of an `mvhd`, `tkhd`, `mdhd` or `mehd`
/// payload (the box content after its 8-byte header) in place, keeping its
/// version: a version 0 field saturates. A box too short to hold the field
/// is left.
pub fn set_header_duration(kind: FourCc, payload: &mut [u8], duration: u64) {
    let Some(&version) = payload.first() else {
        return;
    };
    // Offsets after version/flags: creation, modification, then
    // timescale (mvhd, mdhd) or track ID + reserved (tkhd), then duration;
    // a `mehd` holds the duration alone.
    let at = if &kind == b"mehd" {
        4
    } else if version == 1 {
        4 + 8 + 8 + 4
    } else {
        4 + 4 + 4 + 4
    };
    let at = if &kind == b"tkhd" { at + 4 } else { at };
    let width = if version == 1 { 8 } else { 4 };
    let Some(field) = payload.get_mut(at..at + width) else {
        return;
    };
    if version == 1 {
        BigEndian::write_u64(field, duration);
    } else {
        BigEndian::write_u32(field, duration.min(u64::from(u32::MAX)) as u32);
    }
}
