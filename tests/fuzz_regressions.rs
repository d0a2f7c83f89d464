//! Inputs the fuzzers once crashed the library with, replayed on every run.
//! Each must open (or fail) and plan without a panic.

use std::sync::Arc;

use pseudostream::{Media, MemorySource, Options, Position, Request};

fn replay(bytes: Vec<u8>) {
    let Ok(media) = Media::from_source(Arc::new(MemorySource::new(bytes))) else {
        return;
    };
    let info = media.info().clone();
    assert!(info.start_ms.checked_add(info.duration_ms).is_some());
    for start in [None, Some(Position::Millis(1)), Some(Position::Bytes(40))] {
        for end in [
            None,
            Some(Position::Millis(u64::MAX)),
            Some(Position::Bytes(500)),
        ] {
            let request = Request {
                start,
                end,
                ..Request::default()
            };
            let _ = media.plan(&Options::default(), &request);
        }
    }
}

#[test]
fn every_saved_crash_input_is_handled() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        replay(bytes.clone());
        // The plan target's inputs carry a 52-byte control block first.
        if bytes.len() > 52 {
            replay(bytes[52..].to_vec());
        }
        n += 1;
    }
    assert!(n >= 2, "no saved inputs in {}", dir.display());
}
