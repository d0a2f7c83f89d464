//! The neutral sample model: what every source format indexes into and
//! every output writes from (an MP4 made from an FLV now; CMAF segments
//! next). Tracks of samples in decode order, each with its decode time,
//! composition offset, size, file offset and sync flag, and the codec
//! configurations the samples refer to. Sources differ only in how they
//! fill it.

/// What kind of media a track carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackKind {
    Video,
    Audio,
    Other,
}

/// A codec configuration, as an output needs it to describe samples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SampleEntry {
    /// H.264: the decoder configuration record (`avcC` payload) and the
    /// picture size its SPS declares.
    Avc {
        record: Vec<u8>,
        width: u16,
        height: u16,
    },
    /// AAC: the AudioSpecificConfig.
    Aac {
        config: Vec<u8>,
        channels: u16,
        rate: u32,
    },
    /// MPEG-1/2 Audio Layer III.
    Mp3 { channels: u16, rate: u32 },
}

/// One sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Where its bytes are in the file.
    pub offset: u64,
    /// Decode time, in the track's timescale.
    pub dts: u64,
    pub size: u32,
    /// Presentation time minus decode time, in the track's timescale.
    pub cts: i32,
    /// A decoder can start here.
    pub sync: bool,
    /// Index into the track's entries.
    pub entry: u8,
}

/// One track's samples, in decode order.
#[derive(Clone, Debug, Default)]
pub struct SampleTrack {
    pub kind: Option<TrackKind>,
    pub timescale: u32,
    pub entries: Vec<SampleEntry>,
    pub samples: Vec<Sample>,
    /// Decode time just past the last sample.
    pub end_dts: u64,
}

impl SampleTrack {
    /// Presentation time of the earliest sample (a B-frame delay shows as
    /// the first samples' composition offsets).
    pub fn first_pts(&self) -> i64 {
        self.samples
            .iter()
            .take(64)
            .map(|s| s.dts as i64 + i64::from(s.cts))
            .min()
            .unwrap_or(0)
    }

    /// Presentation time just past the last sample shown.
    pub fn end_pts(&self) -> i64 {
        let tail = self.samples.len().saturating_sub(64);
        let last = self.samples[tail..]
            .iter()
            .map(|s| s.dts as i64 + i64::from(s.cts))
            .max();
        match (last, self.samples.last()) {
            (Some(pts), Some(s)) => pts + (self.end_dts - s.dts) as i64,
            _ => 0,
        }
    }

    /// Duration of sample `i`: to the next one's decode time.
    pub fn duration(&self, i: usize) -> u64 {
        let next = self.samples.get(i + 1).map_or(self.end_dts, |s| s.dts);
        next.saturating_sub(self.samples[i].dts)
    }

    pub fn cost_bytes(&self) -> usize {
        self.samples.len() * std::mem::size_of::<Sample>()
            + self
                .entries
                .iter()
                .map(|e| match e {
                    SampleEntry::Avc { record, .. } => record.len() + 32,
                    SampleEntry::Aac { config, .. } => config.len() + 32,
                    SampleEntry::Mp3 { .. } => 16,
                })
                .sum::<usize>()
    }
}

/// A movie in the neutral model: its tracks (video first).
#[derive(Clone, Debug, Default)]
pub struct SampleMovie {
    pub tracks: Vec<SampleTrack>,
}

impl SampleMovie {
    pub fn cost_bytes(&self) -> usize {
        self.tracks.iter().map(SampleTrack::cost_bytes).sum()
    }
}
