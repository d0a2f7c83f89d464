//! Pacing clock: an initial burst, then a sustained rate. The caller owns the
//! clock (monotonic microseconds) and the waiting; nothing here sleeps or
//! reads a clock, so event loops and threads use it alike.

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

/// Time the rate needs before a send is worth waking up for: a twentieth of
/// a second's worth of bytes, so a paced stream makes about 20 sends a second.
const QUANTUM_DIVISOR: u64 = 20;

/// Token bucket with a fixed start: after `t` seconds, `burst + rate × t`
/// bytes may have been sent in all.
#[derive(Clone, Debug)]
pub struct Pacer {
    burst_bytes: u64,
    rate: u64,
    start_us: Option<u64>,
    sent: u64,
}

/// What a pacer allows now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allowance {
    /// Send up to this many bytes now.
    Send(u64),
    /// Send nothing; ask again after this many microseconds.
    Wait(u64),
}

impl Pacer {
    /// `rate` in bytes per second; 0 means unpaced.
    pub fn new(burst_bytes: u64, rate: u64) -> Pacer {
        Pacer {
            burst_bytes,
            rate,
            start_us: None,
            sent: 0,
        }
    }

    pub fn is_paced(&self) -> bool {
        self.rate > 0
    }

    pub fn burst_bytes(&self) -> u64 {
        self.burst_bytes
    }

    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Bytes sent so far, as told by `consume`.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Total bytes the schedule allows by `now_us`. The first call starts the clock.
    fn budget(&mut self, now_us: u64) -> u64 {
        let start = *self.start_us.get_or_insert(now_us);
        let elapsed = u128::from(now_us.saturating_sub(start));
        let earned = elapsed * u128::from(self.rate) / 1_000_000;
        u64::try_from(u128::from(self.burst_bytes) + earned).unwrap_or(u64::MAX)
    }

    /// How much may go now, given the caller wants up to `want` bytes. Sends
    /// smaller than a quantum (or than `want`) are held back, so a paced
    /// stream is not dribbled out a few bytes per wake-up.
    pub fn allow(&mut self, now_us: u64, want: u64) -> Allowance {
        if self.rate == 0 {
            return Allowance::Send(want);
        }
        let available = self.budget(now_us).saturating_sub(self.sent);
        // The burst goes out whole at once, however small its last piece.
        let in_burst = self.sent < self.burst_bytes;
        let quantum = if in_burst {
            1
        } else {
            self.rate / QUANTUM_DIVISOR
        };
        let worth_sending = want.min(quantum.max(1));
        if available >= worth_sending {
            return Allowance::Send(available.min(want));
        }
        // Time at which sent + worth_sending is within budget.
        let target = u128::from((self.sent + worth_sending).saturating_sub(self.burst_bytes));
        let due_us = (target * 1_000_000).div_ceil(u128::from(self.rate));
        let start = self.start_us.unwrap_or(now_us);
        let elapsed = u128::from(now_us.saturating_sub(start));
        let wait = due_us.saturating_sub(elapsed).max(1);
        Allowance::Wait(u64::try_from(wait).unwrap_or(u64::MAX))
    }

    /// Records bytes actually sent.
    pub fn consume(&mut self, n: u64) {
        self.sent = self.sent.saturating_add(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives a pacer with a fake clock like a host would: send what is
    /// allowed, otherwise sleep the wait. Returns (time, bytes) samples.
    fn drive(p: &mut Pacer, total: u64, chunk: u64) -> Vec<(u64, u64)> {
        let mut now = 1_000_000; // arbitrary start
        let start = now;
        let mut sent = 0;
        let mut samples = Vec::new();
        while sent < total {
            match p.allow(now, chunk.min(total - sent)) {
                Allowance::Send(n) => {
                    assert!(n > 0);
                    p.consume(n);
                    sent += n;
                    samples.push((now - start, sent));
                }
                Allowance::Wait(us) => {
                    assert!(us > 0);
                    now += us;
                }
            }
        }
        samples
    }

    #[test]
    fn burst_goes_out_at_once_and_exactly() {
        let mut p = Pacer::new(300_000, 100_000);
        let samples = drive(&mut p, 1_000_000, 64 * 1024);
        let at_zero: u64 = samples
            .iter()
            .filter(|s| s.0 == 0)
            .map(|s| s.1)
            .max()
            .unwrap();
        assert_eq!(at_zero, 300_000);
    }

    #[test]
    fn sustained_rate_within_one_percent() {
        for &(rate, chunk) in &[
            (100_000u64, 16 * 1024u64),
            (1_250_000, 64 * 1024),
            (7_777, 1500),
        ] {
            let burst = rate * 3;
            let total = burst + rate * 20;
            let mut p = Pacer::new(burst, rate);
            let samples = drive(&mut p, total, chunk);
            let (t_end, sent) = *samples.last().unwrap();
            let measured = (sent - burst) as f64 / (t_end as f64 / 1e6);
            let err = (measured - rate as f64).abs() / rate as f64;
            assert!(err < 0.01, "rate {rate}: measured {measured:.1} ({err:.4})");
            // Never ahead of schedule at any sample.
            for &(t, s) in &samples {
                assert!(s <= burst + (t as u128 * rate as u128 / 1_000_000) as u64);
            }
        }
    }

    #[test]
    fn unpaced_allows_everything() {
        let mut p = Pacer::new(0, 0);
        assert_eq!(p.allow(5, 1 << 30), Allowance::Send(1 << 30));
    }

    #[test]
    fn clock_going_backwards_does_not_underflow() {
        let mut p = Pacer::new(10, 1000);
        assert_eq!(p.allow(1_000_000, 10), Allowance::Send(10));
        p.consume(10);
        assert!(matches!(p.allow(0, 10), Allowance::Wait(_)));
    }
}
