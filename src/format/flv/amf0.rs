//! AMF0, the value encoding of FLV script-data tags (onMetaData). Pure:
//! bytes in, values out. Bounded by the slice it is given and by a nesting
//! limit, so hostile input cannot recurse or allocate without bound.

use byteorder::{BigEndian, ByteOrder};

/// Nesting deeper than this is refused (real metadata nests two levels).
const MAX_DEPTH: usize = 32;

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const REFERENCE: u8 = 0x07;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0a;
const DATE: u8 = 0x0b;
const LONG_STRING: u8 = 0x0c;
const UNSUPPORTED: u8 = 0x0d;
const XML_DOCUMENT: u8 = 0x0f;
const TYPED_OBJECT: u8 = 0x10;

/// One decoded AMF0 value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Number(f64),
    Boolean(bool),
    /// Short and long strings alike; invalid UTF-8 bytes become `?`, not errors.
    String(String),
    Object(Vec<(String, Value)>),
    EcmaArray(Vec<(String, Value)>),
    StrictArray(Vec<Value>),
    /// Milliseconds since the epoch and a (deprecated) time-zone field.
    Date(f64, i16),
    Null,
    Undefined,
    Reference(u16),
    Unsupported,
    XmlDocument(String),
    TypedObject(String, Vec<(String, Value)>),
}

/// Why AMF0 decoding stopped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Amf0Error {
    #[error("amf0: truncated at byte {0}")]
    Truncated(usize),
    #[error("amf0: unknown type marker {marker:#04x} at byte {at}")]
    UnknownMarker { marker: u8, at: usize },
    #[error("amf0: nesting deeper than {MAX_DEPTH}")]
    TooDeep,
}

impl Value {
    /// Properties of an object, ECMA array or typed object.
    pub fn properties(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(p) | Value::EcmaArray(p) | Value::TypedObject(_, p) => Some(p),
            _ => None,
        }
    }

    /// The first property named `name` (case-sensitive, as in Flash).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Elements of a strict array, or the values of an ECMA array/object
    /// whose keys are its indices (some writers emit arrays that way).
    pub fn elements(&self) -> Option<Vec<&Value>> {
        match self {
            Value::StrictArray(items) => Some(items.iter().collect()),
            Value::EcmaArray(p) | Value::Object(p) => Some(p.iter().map(|(_, v)| v).collect()),
            _ => None,
        }
    }
}

/// UTF-8 with each invalid byte replaced by `?`: never longer than the
/// input, so a decoded string always encodes back within AMF0's limits.
fn lossy(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        out.extend(std::iter::repeat('?').take(chunk.invalid().len()));
    }
    out
}

/// Decodes values one after another from a byte slice.
pub struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Decoder { data, pos: 0 }
    }

    /// True when every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// Decodes the next value.
    pub fn value(&mut self) -> Result<Value, Amf0Error> {
        self.value_at_depth(0)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Amf0Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or(Amf0Error::Truncated(self.pos))?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, Amf0Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Amf0Error> {
        Ok(BigEndian::read_u16(self.take(2)?))
    }

    fn u32(&mut self) -> Result<u32, Amf0Error> {
        Ok(BigEndian::read_u32(self.take(4)?))
    }

    fn f64(&mut self) -> Result<f64, Amf0Error> {
        Ok(BigEndian::read_f64(self.take(8)?))
    }

    fn short_string(&mut self) -> Result<String, Amf0Error> {
        let len = self.u16()? as usize;
        Ok(lossy(self.take(len)?))
    }

    fn long_string(&mut self) -> Result<String, Amf0Error> {
        let len = self.u32()? as usize;
        Ok(lossy(self.take(len)?))
    }

    fn value_at_depth(&mut self, depth: usize) -> Result<Value, Amf0Error> {
        if depth > MAX_DEPTH {
            return Err(Amf0Error::TooDeep);
        }
        let at = self.pos;
        let marker = self.u8()?;
        Ok(match marker {
            NUMBER => Value::Number(self.f64()?),
            BOOLEAN => Value::Boolean(self.u8()? != 0),
            STRING => Value::String(self.short_string()?),
            LONG_STRING => Value::String(self.long_string()?),
            OBJECT => Value::Object(self.properties(depth)?),
            ECMA_ARRAY => {
                // The count is advisory: writers get it wrong, the end marker rules.
                self.u32()?;
                Value::EcmaArray(self.properties(depth)?)
            }
            STRICT_ARRAY => {
                let count = self.u32()? as usize;
                // The count is the writer's claim: grow as elements arrive.
                let mut items = Vec::new();
                for _ in 0..count {
                    items.push(self.value_at_depth(depth + 1)?);
                }
                Value::StrictArray(items)
            }
            DATE => {
                let millis = self.f64()?;
                let tz = self.u16()? as i16;
                Value::Date(millis, tz)
            }
            NULL => Value::Null,
            UNDEFINED => Value::Undefined,
            REFERENCE => Value::Reference(self.u16()?),
            UNSUPPORTED => Value::Unsupported,
            XML_DOCUMENT => Value::XmlDocument(self.long_string()?),
            TYPED_OBJECT => {
                let name = self.short_string()?;
                Value::TypedObject(name, self.properties(depth)?)
            }
            marker => return Err(Amf0Error::UnknownMarker { marker, at }),
        })
    }

    /// Key/value pairs up to the empty-key + object-end marker. At the top
    /// level, data that ends where a key would start also ends the object:
    /// several writers omit the final marker of onMetaData's array.
    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Value)>, Amf0Error> {
        let mut props = Vec::new();
        loop {
            if self.is_empty() && depth == 0 {
                return Ok(props);
            }
            let key = self.short_string()?;
            if key.is_empty() && self.data.get(self.pos) == Some(&OBJECT_END) {
                self.pos += 1;
                return Ok(props);
            }
            let value = self.value_at_depth(depth + 1)?;
            props.push((key, value));
        }
    }
}

/// Appends AMF0 encodings to a byte vector (for rewritten onMetaData).
pub struct Encoder<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Encoder<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Encoder { out }
    }

    pub fn value(&mut self, value: &Value) {
        match value {
            Value::Number(n) => self.number(*n),
            Value::Boolean(b) => {
                self.out.push(BOOLEAN);
                self.out.push(u8::from(*b));
            }
            Value::String(s) => self.string(s),
            Value::Object(props) => {
                self.out.push(OBJECT);
                self.properties(props);
            }
            Value::EcmaArray(props) => {
                self.out.push(ECMA_ARRAY);
                self.out
                    .extend_from_slice(&(props.len() as u32).to_be_bytes());
                self.properties(props);
            }
            Value::StrictArray(items) => {
                self.out.push(STRICT_ARRAY);
                self.out
                    .extend_from_slice(&(items.len() as u32).to_be_bytes());
                for item in items {
                    self.value(item);
                }
            }
            Value::Date(millis, tz) => {
                self.out.push(DATE);
                self.out.extend_from_slice(&millis.to_be_bytes());
                self.out.extend_from_slice(&tz.to_be_bytes());
            }
            Value::Null => self.out.push(NULL),
            Value::Undefined => self.out.push(UNDEFINED),
            Value::Reference(r) => {
                self.out.push(REFERENCE);
                self.out.extend_from_slice(&r.to_be_bytes());
            }
            Value::Unsupported => self.out.push(UNSUPPORTED),
            Value::XmlDocument(s) => {
                self.out.push(XML_DOCUMENT);
                self.out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                self.out.extend_from_slice(s.as_bytes());
            }
            Value::TypedObject(name, props) => {
                self.out.push(TYPED_OBJECT);
                self.key(name);
                self.properties(props);
            }
        }
    }

    pub fn number(&mut self, n: f64) {
        self.out.push(NUMBER);
        self.out.extend_from_slice(&n.to_be_bytes());
    }

    /// A string, short or long by its length.
    pub fn string(&mut self, s: &str) {
        if s.len() <= u16::MAX as usize {
            self.out.push(STRING);
            self.key(s);
        } else {
            self.out.push(LONG_STRING);
            self.out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            self.out.extend_from_slice(s.as_bytes());
        }
    }

    /// A property inside an object or ECMA array.
    pub fn key_value(&mut self, key: &str, value: &Value) {
        self.key(key);
        self.value(value);
    }

    /// Opens an ECMA array; properties follow, then `object_end`.
    pub fn ecma_array_start(&mut self, count: u32) {
        self.out.push(ECMA_ARRAY);
        self.out.extend_from_slice(&count.to_be_bytes());
    }

    /// Closes an object or ECMA array.
    pub fn object_end(&mut self) {
        self.out.extend_from_slice(&[0, 0, OBJECT_END]);
    }

    /// Bytes already in AMF0 form (properties encoded earlier).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    fn key(&mut self, s: &str) {
        let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
        self.out
            .extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        self.out.extend_from_slice(bytes);
    }

    fn properties(&mut self, props: &[(String, Value)]) {
        for (k, v) in props {
            self.key_value(k, v);
        }
        self.object_end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        Encoder::new(&mut out).value(v);
        out
    }

    #[test]
    fn numbers_strings_booleans() {
        let mut bytes = vec![NUMBER];
        bytes.extend_from_slice(&12.5f64.to_be_bytes());
        bytes.extend_from_slice(&[BOOLEAN, 1, STRING, 0, 2, b'h', b'i']);
        let mut d = Decoder::new(&bytes);
        assert_eq!(d.value().unwrap(), Value::Number(12.5));
        assert_eq!(d.value().unwrap(), Value::Boolean(true));
        assert_eq!(d.value().unwrap(), Value::String("hi".into()));
        assert!(d.is_empty());
    }

    #[test]
    fn round_trip_of_every_kind() {
        let v = Value::EcmaArray(vec![
            ("duration".into(), Value::Number(61.04)),
            ("stereo".into(), Value::Boolean(false)),
            ("encoder".into(), Value::String("Lavf".into())),
            ("long".into(), Value::String("x".repeat(70_000))),
            ("nothing".into(), Value::Null),
            ("undef".into(), Value::Undefined),
            ("when".into(), Value::Date(1.5e12, -60)),
            (
                "keyframes".into(),
                Value::Object(vec![
                    (
                        "times".into(),
                        Value::StrictArray(vec![Value::Number(0.0), Value::Number(2.0)]),
                    ),
                    (
                        "filepositions".into(),
                        Value::StrictArray(vec![Value::Number(13.0), Value::Number(900.0)]),
                    ),
                ]),
            ),
            ("typed".into(), Value::TypedObject("T".into(), vec![])),
            ("ref".into(), Value::Reference(3)),
            ("xml".into(), Value::XmlDocument("<a/>".into())),
        ]);
        let bytes = encode(&v);
        let mut d = Decoder::new(&bytes);
        assert_eq!(d.value().unwrap(), v);
        assert!(d.is_empty());
        let kf = v.get("keyframes").unwrap();
        assert_eq!(kf.get("times").unwrap().elements().unwrap().len(), 2);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let v = Value::StrictArray(vec![Value::Object(vec![(
            "a".into(),
            Value::StrictArray(vec![Value::String("abc".into()), Value::Number(1.0)]),
        )])]);
        let bytes = encode(&v);
        for cut in 0..bytes.len() {
            let r = Decoder::new(&bytes[..cut]).value();
            assert!(r.is_err(), "cut at {cut} gave {r:?}");
        }
        assert_eq!(Decoder::new(&bytes).value().unwrap(), v);
    }

    #[test]
    fn missing_end_marker_at_end_of_data_is_tolerated() {
        let mut bytes = vec![ECMA_ARRAY, 0, 0, 0, 1, 0, 1, b'a', NUMBER];
        bytes.extend_from_slice(&3f64.to_be_bytes());
        let v = Decoder::new(&bytes).value().unwrap();
        assert_eq!(v.get("a"), Some(&Value::Number(3.0)));
    }

    #[test]
    fn hostile_inputs() {
        // Strict array claiming 4 billion elements in 5 bytes.
        let bytes = [STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            Decoder::new(&bytes).value(),
            Err(Amf0Error::Truncated(_))
        ));
        // Unknown marker.
        assert!(matches!(
            Decoder::new(&[0x42]).value(),
            Err(Amf0Error::UnknownMarker { marker: 0x42, .. })
        ));
        // Deep nesting is refused.
        let mut deep = Vec::new();
        for _ in 0..100 {
            deep.extend_from_slice(&[STRICT_ARRAY, 0, 0, 0, 1]);
        }
        deep.push(NULL);
        assert_eq!(Decoder::new(&deep).value(), Err(Amf0Error::TooDeep));
        // A string whose length runs past the data.
        assert!(Decoder::new(&[STRING, 0xff, 0xff, b'a']).value().is_err());
        // Invalid UTF-8 is replaced byte for byte, not refused.
        let v = Decoder::new(&[STRING, 0, 2, 0xff, b'a']).value().unwrap();
        assert_eq!(v, Value::String("?a".into()));
    }
}

#[cfg(test)]
mod claim_tests {
    use super::*;

    /// Nested strict arrays each claiming 4 billion elements must not reserve
    /// memory for the claims (found by reading the fuzz target's results).
    #[test]
    fn element_counts_are_not_trusted_for_allocation() {
        let mut bytes = Vec::new();
        for _ in 0..33 {
            bytes.extend_from_slice(&[STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff]);
        }
        bytes.resize(bytes.len() + (1 << 20), 0);
        // Each level holds one number (zeros) until the data runs out.
        assert!(Decoder::new(&bytes).value().is_err());
    }

    /// Invalid bytes become one `?` each, so decode, encode, decode is stable
    /// even for keys at the 65535-byte limit.
    #[test]
    fn lossy_strings_round_trip() {
        let mut bytes = vec![OBJECT, 0xff, 0xff];
        bytes.extend(std::iter::repeat(0xff).take(0xffff));
        bytes.extend_from_slice(&[NULL, 0, 0, OBJECT_END]);
        let v = Decoder::new(&bytes).value().unwrap();
        let mut out = Vec::new();
        Encoder::new(&mut out).value(&v);
        assert_eq!(Decoder::new(&out).value().unwrap(), v);
    }
}
