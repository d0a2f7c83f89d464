//! Pacing clock: an initial burst, then a sustained rate. The caller owns the
//! clock (monotonic microseconds) and the waiting; nothing here sleeps or
//! reads a clock, so event loops and threads use it alike.

/// After the burst a paced response goes out in pieces, each one a wake-up
/// of the host (a timer, a send), whose cost hardly depends on the size: a
/// piece is worth a wake-up once it holds this many bytes (one TCP
/// segmentation-offload packet, a sendfile call's worth)...
const PIECE_BYTES: u64 = 64 * 1024;
/// ...but a slow stream gets one at least every two seconds (well inside
/// the few seconds a player buffers), so its bytes are never more than a
/// second off the schedule...
const PIECE_MAX_US: u64 = 2_000_000;
/// ...and a fast one is not woken more than twenty times a second.
const PIECE_MIN_US: u64 = 50_000;

/// `a × b / c`, rounded down, saturating; u64 arithmetic when it fits (a
/// pacer is asked twice per piece).
fn mul_div(a: u64, b: u64, c: u64) -> u64 {
    match a.checked_mul(b) {
        Some(p) => p / c,
        None => u64::try_from(u128::from(a) * u128::from(b) / u128::from(c)).unwrap_or(u64::MAX),
    }
}

/// `a × b / c`, rounded up, saturating.
fn mul_div_ceil(a: u64, b: u64, c: u64) -> u64 {
    match a.checked_mul(b) {
        Some(p) => p.div_ceil(c),
        None => u64::try_from((u128::from(a) * u128::from(b)).div_ceil(u128::from(c)))
            .unwrap_or(u64::MAX),
    }
}

/// The piece size for a rate (bytes per second, > 0).
fn piece_for(rate: u64) -> u64 {
    let at_most = mul_div(rate, PIECE_MAX_US, 1_000_000);
    let at_least = mul_div(rate, PIECE_MIN_US, 1_000_000);
    PIECE_BYTES.clamp(at_least, at_most).max(1)
}

/// Token bucket with a fixed start: after `t` seconds, `burst + rate × t`
/// bytes may have been sent in all. The burst goes at once; after it, the
/// bytes go in pieces (see `piece_for`) placed on that schedule, each one
/// sent when the schedule reaches its middle. The bytes sent thus stay
/// within half a piece of `burst + rate × t` on either side, the long-run
/// rate is exact whatever the piece size, and the last piece waits for
/// its end, so a transfer never finishes early.
#[derive(Clone, Debug)]
pub struct Pacer {
    burst_bytes: u64,
    rate: u64,
    piece: u64,
    start_us: Option<u64>,
    sent: u64,
    /// Bytes up to which a piece is already due: a host whose buffer is
    /// smaller than a piece sends the rest of it without waiting again.
    released: u64,
    file_pages: Option<FilePages>,
}

/// Where the paced window's bytes come from, for page-aligned pieces: its
/// first `prefix_bytes` are the prefix, the rest the file from `file_from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FilePages {
    prefix_bytes: u64,
    file_from: u64,
    page: u64,
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
            piece: if rate > 0 { piece_for(rate) } else { 0 },
            start_us: None,
            sent: 0,
            released: 0,
            file_pages: None,
        }
    }

    /// Past the burst, ends every piece but the last on a multiple of
    /// `page` in the file, so the next one starts on one: Linux sendfile
    /// pushes a piece from the middle of a page in two writes, and a client
    /// may read the small second one on its own. flv.js 1.6 and mpegts.js
    /// 1.8 keep back a read that ends on a lone FLV tag, across a seek too,
    /// where it spoils the new position. The window's first `prefix_bytes`
    /// are the prefix, then the file from `file_from`; `page` 0 turns it
    /// off. The schedule is unchanged: what a piece leaves goes with the
    /// next one.
    pub fn align_file_pages(&mut self, prefix_bytes: u64, file_from: u64, page: u64) {
        self.file_pages = (page > 1).then_some(FilePages {
            prefix_bytes,
            file_from,
            page,
        });
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

    /// Bytes per wake-up after the burst (0 when unpaced).
    pub fn piece(&self) -> u64 {
        self.piece
    }

    /// Bytes sent so far, as told by `consume`.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// How much may go now, given the caller wants up to `want` bytes (a
    /// host sending with sendfile passes all that is left, a buffered one
    /// its buffer's room). The first call starts the clock. Less than a
    /// piece is never sent while more is wanted, so a paced stream is not
    /// dribbled out a few bytes per wake-up; `Wait` says when the next
    /// piece is due.
    pub fn allow(&mut self, now_us: u64, want: u64) -> Allowance {
        self.allow_within(now_us, want, want)
    }

    /// As `allow`, for a host that knows how much of the body is `left`
    /// but sends at most `cap` at a time (its buffer): its pieces go when
    /// the schedule reaches their middle, as a host's that sends all that is
    /// left, the rest of a piece right after its start, and only the body's
    /// last piece waits for its end. Told only its buffer's room, a pacer
    /// takes every piece for the last and sends it half a piece late, which
    /// leaves a player that seeked late in a GOP with half a piece less
    /// ahead of it.
    pub fn allow_within(&mut self, now_us: u64, left: u64, cap: u64) -> Allowance {
        let want = left.min(cap);
        if self.rate == 0 {
            return Allowance::Send(want);
        }
        let start = *self.start_us.get_or_insert(now_us);
        let elapsed = now_us.saturating_sub(start);
        let (sent, burst) = (self.sent, self.burst_bytes);
        let scheduled = burst.saturating_add(mul_div(elapsed, self.rate, 1_000_000));

        // The burst goes out whole at once, however small its last piece.
        if sent < burst {
            return Allowance::Send((scheduled - sent).min(want));
        }
        if sent < self.released {
            return Allowance::Send((self.released - sent).min(want));
        }
        // A piece goes when the schedule reaches its middle; what is left
        // at the end (one piece or less) goes when the schedule reaches it.
        let (need, lead) = if left > self.piece {
            (self.piece, self.piece / 2)
        } else {
            (left, 0)
        };
        let available = scheduled.saturating_add(lead).saturating_sub(sent);
        if available >= need {
            let mut n = available.min(left);
            // The lead is for pieces before the last: a host that wakes a
            // little late must not take the body's end half a piece early
            // with the piece before it, nor leave a sliver to go alone.
            let end_due = scheduled >= sent.saturating_add(left);
            if !end_due && left - n < lead {
                n = left - lead;
            }
            let n = if n < left { self.page_aligned(n) } else { n };
            // Only a buffer smaller than the piece leaves some of it for the
            // next call. A host that sends less than it was allowed for
            // another reason (a batch cut at a page) sends the rest with
            // the next piece, not on its own right after.
            self.released = if n > cap { sent + n } else { 0 };
            return Allowance::Send(n.min(cap));
        }
        // The time at which burst + rate × t + lead reaches sent + need.
        let target = (sent + need).saturating_sub(burst + lead);
        let due_us = mul_div_ceil(target, 1_000_000, self.rate);
        Allowance::Wait(due_us.saturating_sub(elapsed).max(1))
    }

    /// `n` (> 0, not all that is wanted) cut back so that the piece ends on
    /// a file page, when it reaches the file and a page boundary lies past
    /// where its file part starts.
    fn page_aligned(&self, n: u64) -> u64 {
        let Some(f) = self.file_pages else {
            return n;
        };
        let end = self.sent.saturating_add(n);
        if end <= f.prefix_bytes {
            return n;
        }
        let start_in_file = f.file_from + self.sent.saturating_sub(f.prefix_bytes);
        let end_in_file = f.file_from.saturating_add(end - f.prefix_bytes);
        let aligned = end_in_file - end_in_file % f.page;
        if aligned > start_in_file {
            n - (end_in_file - aligned)
        } else {
            n
        }
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
    /// allowed (at most `chunk` at a time), otherwise sleep the wait exactly.
    /// Returns (time, bytes sent so far) after every send.
    fn drive(p: &mut Pacer, total: u64, chunk: u64) -> Vec<(u64, u64)> {
        let mut now = 1_000_000; // arbitrary start
        let start = now;
        let mut sent = 0;
        let mut samples = Vec::new();
        while sent < total {
            match p.allow_within(now, total - sent, chunk) {
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

    /// Distinct instants at which something was sent: the host's wake-ups.
    fn wakeups(samples: &[(u64, u64)]) -> usize {
        let mut times: Vec<u64> = samples.iter().map(|s| s.0).collect();
        times.dedup();
        times.len()
    }

    fn schedule(burst: u64, rate: u64, t_us: u64) -> i128 {
        (u128::from(burst) + u128::from(t_us) * u128::from(rate) / 1_000_000) as i128
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
    fn piece_size_follows_the_rate() {
        // Slow: two seconds' worth, a wake-up every two seconds.
        assert_eq!(Pacer::new(0, 10 * 1024).piece(), 20 * 1024);
        assert_eq!(Pacer::new(0, 1).piece(), 2);
        // Middle: a worthwhile send.
        assert_eq!(Pacer::new(0, 100_000).piece(), 64 * 1024);
        // Fast: at most twenty wake-ups a second.
        assert_eq!(Pacer::new(0, 2_000_000).piece(), 100_000);
        assert_eq!(Pacer::new(0, u64::MAX).piece(), u64::MAX / 20);
        assert_eq!(Pacer::new(0, 0).piece(), 0);
    }

    #[test]
    fn sustained_rate_within_one_percent() {
        for &(rate, chunk) in &[
            (100_000u64, 16 * 1024u64),
            (1_250_000, 64 * 1024),
            (7_777, 1500),
            (10_240, u64::MAX),
            (100_000, u64::MAX),
            (2_000_000, u64::MAX),
        ] {
            let burst = rate * 3;
            let total = burst + rate * 20;
            let mut p = Pacer::new(burst, rate);
            let half = p.piece() as i128 / 2;
            let samples = drive(&mut p, total, chunk);
            let (t_end, sent) = *samples.last().unwrap();
            let measured = (sent - burst) as f64 / (t_end as f64 / 1e6);
            let err = (measured - rate as f64).abs() / rate as f64;
            assert!(err < 0.01, "rate {rate}: measured {measured:.1} ({err:.4})");
            // Never more than half a piece ahead of the schedule.
            for &(t, s) in &samples {
                assert!(
                    s as i128 <= schedule(burst, rate, t) + half,
                    "rate {rate}: {s} bytes at {t} us"
                );
            }
        }
    }

    #[test]
    fn a_host_sending_all_that_is_left_wakes_once_per_piece() {
        // nginx passes everything left as `want`: one wake-up per piece.
        for &(rate, per_second) in &[(10_240u64, 0.5), (100_000, 1.53), (2_000_000, 20.0)] {
            let secs = 30;
            let mut p = Pacer::new(0, rate);
            let samples = drive(&mut p, rate * secs, u64::MAX);
            let per_s = wakeups(&samples) as f64 / secs as f64;
            assert!(
                (per_s - per_second).abs() / per_second < 0.05,
                "rate {rate}: {per_s:.2} wake-ups a second, want {per_second}"
            );
        }
    }

    #[test]
    fn pieces_straddle_the_schedule() {
        // Sampled at every wake-up, the bytes sent are within half a piece
        // of burst + rate × t on both sides, and on average on it: the rate
        // over any window of whole seconds is the rate.
        // The same for a host that sends all that is left and for one
        // whose buffer holds just a piece (PHP, Ruby, .NET, the example host).
        let (burst, rate) = (0, 10_240);
        let piece = Pacer::new(burst, rate).piece();
        for cap in [u64::MAX, piece] {
            let mut p = Pacer::new(burst, rate);
            let half = p.piece() as i128 / 2;
            let samples = drive(&mut p, rate * 60, cap);
            for &(t, s) in &samples {
                let d = s as i128 - schedule(burst, rate, t);
                assert!(
                    d.abs() <= half + 1,
                    "cap {cap}: {s} bytes at {t} us: {d} off"
                );
            }
            // Two-second pieces go at 1 s, 3 s, ...: by any second, the
            // bytes up to the end of the piece around it (the last piece,
            // 58–60 s, waits for its end).
            for second in 1..=58u64 {
                let by_then = samples
                    .iter()
                    .filter(|s| s.0 <= second * 1_000_000)
                    .map(|s| s.1)
                    .max()
                    .unwrap();
                let pieces_due = second.div_ceil(2) * 2;
                assert_eq!(by_then, pieces_due * rate, "cap {cap}: by {second} s");
            }
        }
    }

    #[test]
    fn what_a_host_leaves_of_a_piece_waits_for_the_next() {
        // nginx cuts a batch at a file page and sends less than allowed:
        // the rest goes with the next piece, never as a small send of its
        // own (a lone FLV tag in a read of its own spoils mpegts.js seeks).
        let mut p = Pacer::new(0, 100_000);
        let total = 10_000_000;
        p.allow_within(0, total, u64::MAX); // starts the clock
        let Allowance::Send(n) = p.allow_within(2_000_000, total, u64::MAX) else {
            panic!("a piece is due");
        };
        p.consume(n - 121);
        assert!(matches!(
            p.allow_within(2_000_000, total - n + 121, u64::MAX),
            Allowance::Wait(_)
        ));
        // A buffer smaller than the piece gets the rest of it at once.
        let mut p = Pacer::new(0, 100_000);
        p.allow_within(0, total, 16_384);
        let Allowance::Send(first) = p.allow_within(2_000_000, total, 16_384) else {
            panic!("a piece is due");
        };
        p.consume(first);
        assert_eq!(
            p.allow_within(2_000_000, total - first, 16_384),
            Allowance::Send(16_384)
        );
    }

    #[test]
    fn the_last_byte_goes_on_schedule_never_early() {
        // The nginx test's cut: 471,040 bytes at 100,000 B/s, no burst.
        for &(burst, rate, total) in &[
            (0u64, 100_000u64, 471_040u64),
            (0, 10_240, 95_000),
            (50_000, 100_000, 1_000_001),
            (0, 2_000_000, 7_654_321),
        ] {
            let mut p = Pacer::new(burst, rate);
            let samples = drive(&mut p, total, u64::MAX);
            let (t_end, sent) = *samples.last().unwrap();
            assert_eq!(sent, total);
            let due = ((total - burst) as u128 * 1_000_000).div_ceil(rate as u128) as u64;
            assert_eq!(t_end, due, "burst {burst} rate {rate} total {total}");
        }
    }

    #[test]
    fn a_host_that_wakes_late_still_ends_on_schedule() {
        // Mono's Thread.Sleep wakes tens of milliseconds late under load:
        // the piece before the last must not take the last with it.
        for &(rate, total, late_us) in &[
            (100_000u64, 460_739u64, 30_000u64),
            (100_000, 460_739, 1_000),
            (100_000, 307_160, 200_000),
            (10_240, 95_000, 700_000),
        ] {
            for cap in [u64::MAX, 64 * 1024, 16 * 1024] {
                let mut p = Pacer::new(0, rate);
                let half = p.piece() / 2;
                let (mut now, mut sent) = (0u64, 0u64);
                // Bytes sent at each wake-up.
                let mut sends: Vec<u64> = vec![0];
                while sent < total {
                    match p.allow_within(now, total - sent, cap) {
                        Allowance::Send(n) => {
                            p.consume(n);
                            sent += n;
                            *sends.last_mut().unwrap() += n;
                        }
                        Allowance::Wait(us) => {
                            now += us + late_us;
                            sends.push(0);
                        }
                    }
                }
                let due = (total as u128 * 1_000_000).div_ceil(rate as u128) as u64;
                assert!(
                    now >= due,
                    "rate {rate} late {late_us} cap {cap}: ended at {now} us, due {due}"
                );
                // No sliver goes on its own at the end.
                let last = *sends.last().unwrap();
                assert!(
                    last >= half,
                    "rate {rate} late {late_us} cap {cap}: last wake-up sent {last} bytes"
                );
            }
        }
    }

    #[test]
    fn a_late_host_catches_up_at_once() {
        // A host that could not send for a while (a slow socket) gets what
        // the schedule allows by now in one go, no more.
        let mut p = Pacer::new(0, 10_240);
        assert_eq!(p.allow(0, 1 << 30), Allowance::Wait(1_000_000));
        assert_eq!(
            p.allow(10_000_000, 1 << 30),
            Allowance::Send(102_400 + 10_240)
        );
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

    #[test]
    fn file_pieces_end_on_pages_and_keep_the_schedule() {
        // A window of 3,000 prefix bytes, then the file from byte 1,234;
        // 100 000 B/s after a 50 000-byte burst.
        let (prefix, from, page, total) = (3_000u64, 1_234u64, 4_096u64, 1_000_000u64);
        let mut plain = Pacer::new(50_000, 100_000);
        let mut aligned = Pacer::new(50_000, 100_000);
        aligned.align_file_pages(prefix, from, page);
        let plain_samples = drive(&mut plain, total, total);
        let samples = drive(&mut aligned, total, total);
        assert_eq!(samples.last().unwrap().1, total);
        // Every piece after the burst but the last ends on a file page.
        for &(_, sent) in samples.iter().filter(|s| s.1 > 50_000 && s.1 < total) {
            assert_eq!((from + sent - prefix) % page, 0, "piece ends at {sent}");
        }
        // Same finish; every piece within half a piece and a page of the
        // schedule, when the plain pacer keeps within half a piece.
        assert_eq!(samples.last().unwrap().0, plain_samples.last().unwrap().0);
        let slack = (aligned.piece() / 2 + page) as i128;
        for &(t, sent) in samples.iter().filter(|s| s.1 > 50_000) {
            let off = sent as i128 - schedule(50_000, 100_000, t);
            assert!(off.abs() <= slack, "at {t} us: {sent} sent, {off} off");
        }
        // The burst is not cut.
        assert_eq!(samples[0], (0, 50_000));
    }

    #[test]
    fn page_alignment_leaves_prefix_pieces_and_short_files_alone() {
        // Still in the prefix: nothing to align.
        let mut p = Pacer::new(0, 1_000_000);
        p.align_file_pages(1 << 20, 0, 4_096);
        assert_eq!(p.allow(0, 2 << 20), Allowance::Wait(32_768));
        assert_eq!(p.allow(32_768, 2 << 20), Allowance::Send(32_768 + 32_768));
        // No page boundary past the piece's start in the file: sent whole.
        let mut p = Pacer::new(0, 1_000_000);
        p.align_file_pages(0, 100, 1 << 20);
        assert_eq!(p.allow(0, 1 << 20), Allowance::Wait(32_768));
        assert_eq!(p.allow(32_768, 1 << 20), Allowance::Send(65_536));
    }
}
