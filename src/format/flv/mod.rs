//! FLV: file and tag headers, AMF0 script data and onMetaData.

pub mod amf0;
pub mod meta;
pub mod tag;
