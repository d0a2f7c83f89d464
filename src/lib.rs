//! libpseudostream: HTTP pseudostreaming of video for web servers.
//!
//! Layers, each depending only on those before it:
//! `format` (pure parsers) → `index` (+ `cache`) → `plan` → `stream` and
//! `pacer` → `exchange` (+ `config`: the whole HTTP answer) → `ffi` (the C
//! ABI). `source` provides the bytes underneath.

pub mod cache;
pub mod config;
pub mod error;
pub mod exchange;
pub mod ffi;
mod fnv;
pub mod format;
pub mod httpdate;
pub mod index;
pub mod media;
pub mod pacer;
pub mod plan;
pub mod query;
pub mod source;
pub mod stream;

pub use config::{Config, Cors};
pub use error::{Error, Result};
pub use exchange::Exchange;
pub use index::{IndexOrigin, Keyframe, MediaInfo};
pub use media::Media;
pub use pacer::{Burst, Pacer, Pacing, Rate};
pub use plan::{
    Conditions, CutMode, MetadataMode, Options, ParamNames, Plan, Position, Prefix, PrefixMode,
    RangeOutcome, Request, Response, StartUnit,
};
pub use source::{ByteSource, FileSource, FileStat, MemorySource};
pub use stream::{Fill, Stream, Take};
