//! Reading the browser driver's JSON report with serde_json: a missing
//! member or element reads as null, so a report is walked without unwrapping
//! at every step (`seek.field("requests").items()`).

#![allow(dead_code)] // each test binary uses a different part

pub use serde_json::Value;

/// Parses one JSON text.
pub fn parse(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// Lenient accessors: `None`, null or empty for anything of another kind.
pub trait Json {
    /// A member of an object (null when absent or not an object).
    fn field(&self, key: &str) -> &Value;
    fn num(&self) -> Option<f64>;
    fn str(&self) -> Option<&str>;
    fn bool(&self) -> Option<bool>;
    /// The elements of an array (empty for anything else).
    fn items(&self) -> &[Value];
}

impl Json for Value {
    fn field(&self, key: &str) -> &Value {
        &self[key]
    }

    fn num(&self) -> Option<f64> {
        self.as_f64()
    }

    fn str(&self) -> Option<&str> {
        self.as_str()
    }

    fn bool(&self) -> Option<bool> {
        self.as_bool()
    }

    fn items(&self) -> &[Value] {
        self.as_array().map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_and_mistyped_read_as_nothing() {
        let v = parse(r#"{"a": {"b": [1, "x", true]}, "n": null}"#).unwrap();
        let items = v.field("a").field("b").items();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].num(), Some(1.0));
        assert_eq!(items[1].str(), Some("x"));
        assert_eq!(items[2].bool(), Some(true));
        assert!(v.field("missing").field("deeper").is_null());
        assert!(v.field("n").items().is_empty());
        assert_eq!(items[1].num(), None);
        assert!(parse("{").is_err());
    }
}
