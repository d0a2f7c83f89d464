//! onMetaData: what the keyframe index needs from it, and the rewritten
//! onMetaData that `full` responses carry. Pure.

use super::amf0::{Decoder, Encoder, Value};

/// Name of the script-data event carrying file metadata.
pub const ON_METADATA: &str = "onMetaData";

/// Keys that describe the whole original file and go stale in a cut; a
/// rewritten onMetaData drops them and writes its own.
const STALE_KEYS: &[&str] = &[
    "duration",
    "filesize",
    "datasize",
    "videosize",
    "audiosize",
    "keyframes",
    "hasKeyframes",
    "lasttimestamp",
    "lastkeyframetimestamp",
    "lastkeyframelocation",
    "lastsecond",
    "metadatacreator",
    "metadatadate",
];

/// Lasting properties larger than this are not carried into cuts, so a
/// rewritten onMetaData stays far below the 16 MiB a tag can hold.
const MAX_KEPT_BYTES: usize = 1024 * 1024;

/// Most keyframes listed in a rewritten onMetaData (18 bytes each); longer
/// lists are thinned evenly.
pub const MAX_CUT_KEYFRAMES: usize = 200_000;

/// What the index takes from onMetaData.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    pub duration_s: Option<f64>,
    pub filesize: Option<f64>,
    /// (time in seconds, file position) pairs, as written.
    pub keyframes: Option<Vec<(f64, f64)>>,
    pub width: Option<f64>,
    pub height: Option<f64>,
    /// The properties that stay true in a cut, AMF0-encoded back to back.
    pub kept_properties: Vec<u8>,
    pub kept_count: u32,
}

/// Decodes a script-data tag body into its event name and first argument.
/// None when the body is not `string, value`.
pub fn parse_script(body: &[u8]) -> Option<(String, Value)> {
    let mut d = Decoder::new(body);
    let name = match d.value().ok()? {
        Value::String(s) => s,
        _ => return None,
    };
    let value = d.value().ok()?;
    Some((name, value))
}

/// Extracts metadata from the onMetaData argument. Keyframes may be an object
/// or an ECMA array holding `times` and `filepositions` arrays of numbers.
pub fn metadata_from(value: &Value) -> Metadata {
    let number = |k: &str| value.get(k).and_then(Value::as_number);
    let keyframes = value.get("keyframes").and_then(|kf| {
        let times = kf.get("times")?.elements()?;
        let positions = kf.get("filepositions")?.elements()?;
        if times.len() != positions.len() {
            return None;
        }
        times
            .iter()
            .zip(positions.iter())
            .map(|(t, p)| Some((t.as_number()?, p.as_number()?)))
            .collect::<Option<Vec<_>>>()
    });
    let mut kept_properties = Vec::new();
    let mut kept_count = 0;
    if let Some(props) = value.properties() {
        let mut enc = Encoder::new(&mut kept_properties);
        for (k, v) in props {
            if STALE_KEYS.contains(&k.as_str()) {
                continue;
            }
            enc.key_value(k, v);
            kept_count += 1;
        }
    }
    if kept_properties.len() > MAX_KEPT_BYTES {
        kept_properties.clear();
        kept_count = 0;
    }
    Metadata {
        duration_s: number("duration"),
        filesize: number("filesize"),
        keyframes,
        width: number("width"),
        height: number("height"),
        kept_properties,
        kept_count,
    }
}

/// What a rewritten onMetaData says about the cut it heads.
pub struct CutMetadata<'a> {
    pub duration_s: f64,
    pub filesize: f64,
    /// (seconds, position in the new stream).
    pub keyframes: &'a [(f64, f64)],
}

/// Encodes a complete onMetaData script-data body: the original's lasting
/// properties followed by this cut's duration, size and keyframes. The size
/// does not depend on the numbers, so callers can encode once with zeros to
/// learn it and again with the real positions.
pub fn encode_cut_metadata(original: Option<&Metadata>, cut: &CutMetadata) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = Encoder::new(&mut out);
    enc.string(ON_METADATA);
    let (kept, kept_count) = original
        .map(|m| (m.kept_properties.as_slice(), m.kept_count))
        .unwrap_or((&[], 0));
    enc.ecma_array_start(kept_count + 4);
    enc.raw(kept);
    enc.key_value("duration", &Value::Number(cut.duration_s));
    enc.key_value("filesize", &Value::Number(cut.filesize));
    enc.key_value("hasKeyframes", &Value::Boolean(!cut.keyframes.is_empty()));
    let times = cut.keyframes.iter().map(|k| Value::Number(k.0)).collect();
    let positions = cut.keyframes.iter().map(|k| Value::Number(k.1)).collect();
    enc.key_value(
        "keyframes",
        &Value::Object(vec![
            ("times".into(), Value::StrictArray(times)),
            ("filepositions".into(), Value::StrictArray(positions)),
        ]),
    );
    enc.object_end();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_metadata(props: Vec<(String, Value)>) -> Vec<u8> {
        let mut body = Vec::new();
        let mut enc = Encoder::new(&mut body);
        enc.string(ON_METADATA);
        enc.value(&Value::EcmaArray(props));
        body
    }

    #[test]
    fn keyframes_as_object_or_ecma_array() {
        for wrap in [Value::Object as fn(_) -> Value, Value::EcmaArray] {
            let kf = wrap(vec![
                (
                    "filepositions".into(),
                    Value::StrictArray(vec![Value::Number(400.0), Value::Number(9000.0)]),
                ),
                (
                    "times".into(),
                    Value::StrictArray(vec![Value::Number(0.0), Value::Number(2.5)]),
                ),
            ]);
            let body = on_metadata(vec![
                ("duration".into(), Value::Number(10.0)),
                ("width".into(), Value::Number(320.0)),
                ("keyframes".into(), kf),
            ]);
            let (name, value) = parse_script(&body).unwrap();
            assert_eq!(name, ON_METADATA);
            let m = metadata_from(&value);
            assert_eq!(m.duration_s, Some(10.0));
            assert_eq!(m.keyframes, Some(vec![(0.0, 400.0), (2.5, 9000.0)]));
            assert_eq!(m.kept_count, 1, "only width survives a cut");
        }
    }

    #[test]
    fn mismatched_or_non_numeric_keyframes_are_ignored() {
        let body = on_metadata(vec![(
            "keyframes".into(),
            Value::Object(vec![
                ("times".into(), Value::StrictArray(vec![Value::Number(0.0)])),
                ("filepositions".into(), Value::StrictArray(vec![])),
            ]),
        )]);
        assert_eq!(
            metadata_from(&parse_script(&body).unwrap().1).keyframes,
            None
        );
        let body = on_metadata(vec![(
            "keyframes".into(),
            Value::Object(vec![
                ("times".into(), Value::StrictArray(vec![Value::Null])),
                (
                    "filepositions".into(),
                    Value::StrictArray(vec![Value::Number(1.0)]),
                ),
            ]),
        )]);
        assert_eq!(
            metadata_from(&parse_script(&body).unwrap().1).keyframes,
            None
        );
        assert!(parse_script(&[0x00, 0, 0, 0, 0, 0, 0, 0, 0]).is_none());
    }

    #[test]
    fn cut_metadata_size_does_not_depend_on_values() {
        let body = on_metadata(vec![
            ("width".into(), Value::Number(320.0)),
            ("encoder".into(), Value::String("Lavf".into())),
        ]);
        let original = metadata_from(&parse_script(&body).unwrap().1);
        let zeros = [(0.0, 0.0); 3];
        let real = [(1.0, 13.0), (3.0, 5000.0), (5.0, 90000.0)];
        let a = encode_cut_metadata(
            Some(&original),
            &CutMetadata {
                duration_s: 0.0,
                filesize: 0.0,
                keyframes: &zeros,
            },
        );
        let b = encode_cut_metadata(
            Some(&original),
            &CutMetadata {
                duration_s: 4.5,
                filesize: 123456.0,
                keyframes: &real,
            },
        );
        assert_eq!(a.len(), b.len());
        let (_, value) = parse_script(&b).unwrap();
        let m = metadata_from(&value);
        assert_eq!(m.duration_s, Some(4.5));
        assert_eq!(m.keyframes.unwrap().len(), 3);
        assert_eq!(value.get("encoder"), Some(&Value::String("Lavf".into())));
    }
}
