//! A stream over a plan: fills caller buffers with the prefix, then file
//! bytes by positioned reads, under an optional pacer. No allocation and no
//! clock reads per call.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::pacer::{Allowance, Pacer};
use crate::plan::{Plan, Prefix};
use crate::source::ByteSource;

/// What one `fill` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// This many bytes were written to the buffer.
    Data(usize),
    /// Ahead of schedule: call again after this many microseconds.
    Wait(u64),
    /// Everything has been delivered.
    Done,
}

/// Produces one response (or one window of it, for a Range request).
pub struct Stream {
    source: Arc<dyn ByteSource>,
    prefix: Prefix,
    prefix_pos: usize,
    prefix_end: usize,
    file_pos: u64,
    file_end: u64,
    pacer: Pacer,
}

impl Stream {
    /// A stream of `len` bytes from `first` of `plan`'s response.
    pub(crate) fn new(
        source: Arc<dyn ByteSource>,
        plan: &Plan,
        first: u64,
        len: u64,
    ) -> Result<Stream> {
        let s = plan.slice(first, len)?;
        Ok(Stream {
            source,
            prefix: plan.prefix.clone(),
            prefix_pos: s.prefix_from,
            prefix_end: s.prefix_to,
            file_pos: s.file_from,
            file_end: s.file_to,
            pacer: Pacer::new(plan.burst_bytes, plan.rate_bytes_per_s),
        })
    }

    /// Bytes still to come.
    pub fn remaining(&self) -> u64 {
        (self.prefix_end - self.prefix_pos) as u64 + (self.file_end - self.file_pos)
    }

    /// Replaces the pacing the plan gave (the library's policy, see
    /// `Response`); for tools and tests, hosts have no need of it.
    pub fn set_pacing(&mut self, burst_bytes: u64, rate_bytes_per_s: u64) {
        self.pacer = Pacer::new(burst_bytes, rate_bytes_per_s);
    }

    /// Fills `buf` as far as pacing allows at `now_us` (a monotonic clock in
    /// microseconds; any origin). A file that ends before the planned range
    /// does is an error (`SourceChanged`), never a short success.
    pub fn fill(&mut self, buf: &mut [u8], now_us: u64) -> Result<Fill> {
        let remaining = self.remaining();
        if remaining == 0 {
            return Ok(Fill::Done);
        }
        let want = remaining.min(buf.len() as u64);
        if want == 0 {
            return Err(Error::InvalidArgument("empty buffer".into()));
        }
        let allowed = match self.pacer.allow(now_us, want) {
            Allowance::Send(n) => n,
            Allowance::Wait(us) => return Ok(Fill::Wait(us)),
        } as usize;

        let mut written = 0;
        let from_prefix = (self.prefix_end - self.prefix_pos).min(allowed);
        if from_prefix > 0 {
            buf[..from_prefix]
                .copy_from_slice(&self.prefix[self.prefix_pos..self.prefix_pos + from_prefix]);
            self.prefix_pos += from_prefix;
            written = from_prefix;
        }
        let from_file = ((self.file_end - self.file_pos) as usize).min(allowed - written);
        if from_file > 0 {
            let target = &mut buf[written..written + from_file];
            let n = loop {
                match self.source.read_at(self.file_pos, target) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            if n == 0 {
                return Err(Error::SourceChanged(format!(
                    "source ended at byte {} before the planned {}",
                    self.file_pos, self.file_end
                )));
            }
            self.file_pos += n as u64;
            written += n;
        }
        self.pacer.consume(written as u64);
        Ok(Fill::Data(written))
    }
}
