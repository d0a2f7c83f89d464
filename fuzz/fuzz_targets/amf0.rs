//! AMF0: decode values back to back until an error or the end of the data;
//! every decoded value must re-encode to bytes that decode to the same value
//! (NaN aside, which never equals itself). The same bytes also go through
//! the onMetaData helpers built on AMF0.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pseudostream::format::flv::amf0::{Decoder, Encoder, Value};
use pseudostream::format::flv::meta::{self, CutMetadata};

fn has_nan(v: &Value) -> bool {
    match v {
        Value::Number(n) | Value::Date(n, _) => n.is_nan(),
        Value::Object(p) | Value::EcmaArray(p) | Value::TypedObject(_, p) => {
            p.iter().any(|(_, v)| has_nan(v))
        }
        Value::StrictArray(items) => items.iter().any(has_nan),
        _ => false,
    }
}

fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    Encoder::new(&mut out).value(v);
    out
}

fn round_trip(v: &Value) {
    let bytes = encode(v);
    let mut d = Decoder::new(&bytes);
    let back = match d.value() {
        Ok(back) => back,
        Err(e) => panic!("re-encoded value does not decode: {e}\nvalue: {v:?}"),
    };
    assert!(d.is_empty(), "bytes left after a re-encoded value");
    if !has_nan(v) {
        assert_eq!(&back, v, "AMF0 round trip changed the value");
    }
}

/// The onMetaData path: extraction, kept properties, rewritten metadata.
fn metadata(data: &[u8]) {
    let Some((_, value)) = meta::parse_script(data) else {
        return;
    };
    let m = meta::metadata_from(&value);

    // The kept properties are AMF0 key/value pairs: wrapped in an object
    // they must decode to exactly the non-stale properties of the original.
    let mut wrapped = vec![0x03];
    wrapped.extend_from_slice(&m.kept_properties);
    wrapped.extend_from_slice(&[0, 0, 0x09]);
    let mut d = Decoder::new(&wrapped);
    let kept = match d.value() {
        Ok(Value::Object(props)) => props,
        other => panic!("kept properties do not decode: {other:?}"),
    };
    assert!(d.is_empty());
    assert_eq!(kept.len(), m.kept_count as usize);
    if !has_nan(&value) {
        let props = value.properties().unwrap_or(&[]);
        assert!(kept.len() <= props.len());
        let in_original =
            |(k, v): &(String, Value)| props.iter().any(|(pk, pv)| pk == k && pv == v);
        assert!(
            kept.iter().all(in_original),
            "kept property not in the original"
        );
    }

    // A rewritten onMetaData decodes back with its own numbers first among
    // the new keys and the kept properties in front.
    let keyframes: Vec<(f64, f64)> = m
        .keyframes
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .take(64)
        .copied()
        .collect();
    let cut = CutMetadata {
        duration_s: 12.5,
        filesize: 4096.0,
        keyframes: &keyframes,
    };
    let body = meta::encode_cut_metadata(Some(&m), &cut);
    let zeros = vec![(0.0, 0.0); keyframes.len()];
    let sized = meta::encode_cut_metadata(
        Some(&m),
        &CutMetadata {
            duration_s: 0.0,
            filesize: 0.0,
            keyframes: &zeros,
        },
    );
    assert_eq!(body.len(), sized.len(), "metadata size depends on values");
    let (name, rewritten) = meta::parse_script(&body).expect("rewritten onMetaData must parse");
    assert_eq!(name, meta::ON_METADATA);
    let props = rewritten
        .properties()
        .expect("rewritten onMetaData is an array");
    assert_eq!(props.len(), kept.len() + 4);
    assert_eq!(rewritten.get("duration"), Some(&Value::Number(12.5)));
    assert_eq!(rewritten.get("filesize"), Some(&Value::Number(4096.0)));
    let again = meta::metadata_from(&rewritten);
    assert_eq!(again.kept_count, m.kept_count);
    let listed = again
        .keyframes
        .expect("rewritten keyframes must be read back");
    assert_eq!(listed.len(), keyframes.len());
}

fuzz_target!(|data: &[u8]| {
    let mut d = Decoder::new(data);
    let mut values = 0usize;
    while !d.is_empty() {
        match d.value() {
            Ok(v) => {
                values += 1;
                // Every value takes at least one byte.
                assert!(values <= data.len(), "decoder made no progress");
                round_trip(&v);
            }
            Err(_) => break,
        }
    }
    metadata(data);
});
