//! A `moov` moved to another place in its file: the same boxes with every
//! chunk offset (`stco`/`co64`) moved by the same rule, each `stco` becoming
//! a `co64` when a moved offset no longer fits 32 bits. What a faststart
//! rewrite (moov ahead of the media data) writes.

use super::boxes::{children, fourcc_str, FourCc};
use super::moov::entered;
use super::tables::chunk_offsets;
use super::write::BoxWriter;
use super::Mp4Error;

/// The whole `moov` box (header included) for a file in which the data the
/// old chunk offsets point at moves: offset `o` becomes `moved(o) + len`,
/// where `len` is the new `moov`'s own size, so that the new `moov` can sit
/// before the data. `moved` returns `None` for an offset that points at no
/// moved data (into the old `moov` itself, say).
pub fn relocated_moov(
    payload: &[u8],
    moved: impl Fn(u64) -> Option<u64>,
) -> Result<Vec<u8>, Mp4Error> {
    let entries = chunk_offset_entries(payload, *b"moov")?;
    let narrow_len = 8 + payload.len() as u64;
    let fits = |moov_len: u64| -> Result<bool, Mp4Error> {
        let mut all = true;
        walk_offsets(payload, *b"moov", &mut |o| {
            let new = new_offset(&moved, o, moov_len)?;
            all &= new <= u64::from(u32::MAX);
            Ok(())
        })?;
        Ok(all)
    };
    // Every table stays as it is when every offset fits; otherwise every
    // `stco` widens (as qt-faststart does), and 64-bit offsets always fit.
    let wide = !fits(narrow_len)?;
    let moov_len = if wide {
        narrow_len + 4 * entries.narrow
    } else {
        narrow_len
    };
    let mut w = BoxWriter::with_capacity(moov_len as usize);
    let moov = w.open(*b"moov");
    copy_with_offsets(&mut w, payload, *b"moov", wide, &|o| {
        new_offset(&moved, o, moov_len)
    })?;
    w.close(moov);
    debug_assert_eq!(w.len() as u64, moov_len);
    Ok(w.out)
}

fn new_offset(moved: &impl Fn(u64) -> Option<u64>, o: u64, moov_len: u64) -> Result<u64, Mp4Error> {
    moved(o)
        .and_then(|m| m.checked_add(moov_len))
        .ok_or_else(|| Mp4Error::new(format!("a chunk offset ({o}) points at no media data")))
}

/// Entries of the chunk offset tables inside a container.
#[derive(Default)]
struct OffsetEntries {
    /// In `stco` tables.
    narrow: u64,
}

fn chunk_offset_entries(payload: &[u8], parent: FourCc) -> Result<OffsetEntries, Mp4Error> {
    let mut counts = OffsetEntries::default();
    for child in children(payload, parent) {
        let child = child?;
        if entered(parent, child.kind) {
            counts.narrow += chunk_offset_entries(child.payload, child.kind)?.narrow;
        } else if &child.kind == b"stco" {
            counts.narrow += chunk_offsets(child.payload, child.kind)?.len() as u64;
        }
    }
    Ok(counts)
}

fn walk_offsets(
    payload: &[u8],
    parent: FourCc,
    f: &mut dyn FnMut(u64) -> Result<(), Mp4Error>,
) -> Result<(), Mp4Error> {
    for child in children(payload, parent) {
        let child = child?;
        if entered(parent, child.kind) {
            walk_offsets(child.payload, child.kind, f)?;
        } else if matches!(&child.kind, b"stco" | b"co64") {
            for o in chunk_offsets(child.payload, child.kind)? {
                f(o)?;
            }
        }
    }
    Ok(())
}

/// Copies a container's children, entering those on the way to the sample
/// tables and writing chunk offset tables anew.
fn copy_with_offsets(
    w: &mut BoxWriter,
    payload: &[u8],
    parent: FourCc,
    wide: bool,
    new: &dyn Fn(u64) -> Result<u64, Mp4Error>,
) -> Result<(), Mp4Error> {
    for child in children(payload, parent) {
        let child = child?;
        if entered(parent, child.kind) {
            let b = w.open(child.kind);
            copy_with_offsets(w, child.payload, child.kind, wide, new)?;
            w.close(b);
        } else if matches!(&child.kind, b"stco" | b"co64") {
            let offsets = chunk_offsets(child.payload, child.kind)?;
            let as_wide = wide || &child.kind == b"co64";
            let b = w.open_full(if as_wide { *b"co64" } else { *b"stco" }, 0, 0);
            w.u32(offsets.len() as u32);
            for o in offsets {
                let n = new(o)?;
                if as_wide {
                    w.u64(n);
                } else {
                    w.u32(u32::try_from(n).map_err(|_| {
                        Mp4Error::new(format!(
                            "chunk offset {n} does not fit '{}'",
                            fourcc_str(child.kind)
                        ))
                    })?);
                }
            }
            w.close(b);
        } else {
            w.bytes(child.bytes);
        }
    }
    Ok(())
}

/// The chunk offsets of every track of a `moov` payload, in track order.
pub fn all_chunk_offsets(payload: &[u8]) -> Result<Vec<Vec<u64>>, Mp4Error> {
    let mut tracks = Vec::new();
    for child in children(payload, *b"moov") {
        let child = child?;
        if &child.kind == b"trak" {
            let mut offsets = Vec::new();
            walk_offsets(child.payload, *b"trak", &mut |o| {
                offsets.push(o);
                Ok(())
            })?;
            tracks.push(offsets);
        }
    }
    Ok(tracks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use byteorder::{BigEndian, ByteOrder};

    fn box_size(bytes: &[u8]) -> Option<u32> {
        bytes.get(..4).map(BigEndian::read_u32)
    }

    /// A `moov` payload with one track whose `stbl` holds `table` (`stco`
    /// or `co64`) with `offsets`, beside a box that must be copied as is.
    fn moov_payload(table: &FourCc, offsets: &[u64]) -> Vec<u8> {
        let mut w = BoxWriter::default();
        let mvhd = w.open_full(*b"mvhd", 0, 0);
        w.bytes(&[9; 96]);
        w.close(mvhd);
        let trak = w.open(*b"trak");
        let mdia = w.open(*b"mdia");
        let minf = w.open(*b"minf");
        let stbl = w.open(*b"stbl");
        let stsz = w.open_full(*b"stsz", 0, 0);
        w.u32(7);
        w.u32(offsets.len() as u32);
        w.close(stsz);
        let t = w.open_full(*table, 0, 0);
        w.u32(offsets.len() as u32);
        for &o in offsets {
            if table == b"co64" {
                w.u64(o);
            } else {
                w.u32(o as u32);
            }
        }
        w.close(t);
        w.close(stbl);
        w.close(minf);
        w.close(mdia);
        w.close(trak);
        w.out
    }

    fn moved_payload(moov: &[u8]) -> &[u8] {
        &moov[8..]
    }

    #[test]
    fn offsets_move_by_the_new_moov_and_everything_else_is_kept() {
        let payload = moov_payload(b"stco", &[40, 1000, 5000]);
        let moov = relocated_moov(&payload, |o| o.checked_sub(32)).unwrap();
        assert_eq!(moov.len(), payload.len() + 8);
        assert_eq!(box_size(&moov), Some(moov.len() as u32));
        let len = moov.len() as u64;
        let got = all_chunk_offsets(moved_payload(&moov)).unwrap();
        assert_eq!(got, vec![vec![8 + len, 968 + len, 4968 + len]]);
        // Only the offsets differ.
        let before = moov_payload(b"stco", &[8 + len, 968 + len, 4968 + len]);
        assert_eq!(moved_payload(&moov), &before[..]);
    }

    #[test]
    fn an_offset_past_32_bits_widens_every_table() {
        let near = u64::from(u32::MAX) - 100;
        let payload = moov_payload(b"stco", &[40, near]);
        let moov = relocated_moov(&payload, Some).unwrap();
        assert_eq!(moov.len(), payload.len() + 8 + 2 * 4);
        let len = moov.len() as u64;
        assert_eq!(
            all_chunk_offsets(moved_payload(&moov)).unwrap(),
            vec![vec![40 + len, near + len]]
        );
        assert_eq!(
            moved_payload(&moov),
            &moov_payload(b"co64", &[40 + len, near + len])[..]
        );
    }

    #[test]
    fn an_offset_into_no_moved_data_is_refused() {
        let payload = moov_payload(b"co64", &[40, 90]);
        let err = relocated_moov(&payload, |o| (o < 50).then_some(o)).unwrap_err();
        assert!(err.0.contains("(90)"), "{err}");
    }
}
