//! Pacing as a policy: what a host configures and a plan resolves against
//! the media (its burst in bytes, its rate). The clock that applies it is
//! `pacer`, a layer above.

/// How much goes out before the sustained rate applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Burst {
    Bytes(u64),
    /// Milliseconds of media, turned into bytes by the average bitrate.
    MediaMillis(u64),
}

/// The sustained rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rate {
    /// Unpaced.
    Off,
    BytesPerSecond(u64),
    /// The media's average bitrate times `permille`/1000 (1250 = 1.25×).
    Auto {
        permille: u32,
    },
}

/// Pacing as configured by a host, before it meets a media file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pacing {
    pub burst: Burst,
    pub rate: Rate,
}

impl Default for Pacing {
    /// Off; when a rate is set, the burst is 3 s of media.
    fn default() -> Self {
        Pacing {
            burst: Burst::MediaMillis(3000),
            rate: Rate::Off,
        }
    }
}
