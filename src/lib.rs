//! libpseudostream: HTTP pseudostreaming of video for web servers.
//!
//! Layers, each depending only on those before it:
//! `format` (pure parsers) → `index` (+ `cache`) → `plan` → `stream` and
//! `pacer` → `exchange` (+ `config`: the whole HTTP answer) → `ffi` (the C
//! ABI). `source` provides the bytes underneath. The pacing policy (`Burst`,
//! `Rate`, `Pacing`) is part of the plan; `pacer` is the clock, on plain
//! numbers.

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
pub use pacer::Pacer;
pub use plan::{
    Burst, Conditions, CutMode, MetadataMode, Options, Output, Pacing, ParamNames, Plan, Position,
    Prefix, PrefixMode, RangeOutcome, Rate, Request, Response, StartUnit,
};
pub use source::{ByteSource, FileSource, FileStat, MemorySource};
pub use stream::{Fill, Stream, Take};
