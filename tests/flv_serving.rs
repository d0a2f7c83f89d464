//! Serving a plan: Range windows over the response, validators, a file
//! that shrinks while it is served, and pacing under a fake clock.

mod common;

use std::fs::OpenOptions;

use common::{body, drain, reference, stored_options, TempFile};
use pseudostream::{
    query, Burst, Conditions, Error, Fill, Media, Options, Pacing, Plan, Position, PrefixMode,
    Rate, Request, StartUnit,
};

fn seek(media: &Media, mode: PrefixMode, start: Option<Position>) -> Plan {
    media
        .plan(
            &stored_options(),
            &Request {
                start,
                prefix: Some(mode),
                ..Request::default()
            },
        )
        .unwrap()
}

fn range(header: &str) -> Conditions<'_> {
    Conditions {
        range: Some(header),
        ..Conditions::default()
    }
}

#[test]
fn range_windows_are_exact_slices_of_the_full_response() {
    common::needs_ffmpeg!();
    let mut windows = 0;
    for file in [
        "h264_aac.yamdi.flv",
        "bframes.plain.flv",
        "audio_only.ffidx.flv",
    ] {
        let r = reference(file);
        let media = Media::open(&r.entry.path).unwrap();
        let kf = r.seek_points[r.seek_points.len() / 2];
        let plans = [
            seek(&media, PrefixMode::Full, Some(Position::Millis(kf.0 + 20))),
            seek(&media, PrefixMode::Init, Some(Position::Bytes(kf.1))),
            seek(&media, PrefixMode::Header, Some(Position::Bytes(kf.1 + 9))),
            seek(&media, PrefixMode::None, Some(Position::Bytes(kf.1 + 9))),
            seek(&media, PrefixMode::Init, None),
        ];
        for plan in &plans {
            let full = body(&media, plan);
            let len = plan.len();
            let p = plan.prefix.len() as u64;
            let headers = [
                "bytes=0-0".to_string(),
                "bytes=0-99".to_string(),
                format!("bytes=5-{}", p + 100),
                format!("bytes={p}-{p}"),
                format!("bytes={}-", p.saturating_sub(1)),
                format!("bytes={}-{}", len / 3, 2 * len / 3),
                format!("bytes={}-", len - 10),
                format!("bytes={}-{}", len - 1, len + 1000),
                "bytes=-1".to_string(),
                "bytes=-5000".to_string(),
                format!("bytes=-{}", len + 7),
                "bytes=0-".to_string(),
            ];
            for h in &headers {
                let resp = plan.respond(&range(h));
                assert_eq!(resp.status, 206, "{file} {h}");
                let got = drain(&media, plan, resp.first, resp.len).unwrap();
                let (a, b) = (resp.first as usize, (resp.first + resp.len) as usize);
                assert!(got == full[a..b], "{file} {h}: window differs");
                assert_eq!(
                    plan.content_range(&resp).unwrap(),
                    format!("bytes {}-{}/{len}", a, b - 1)
                );
                windows += 1;
            }
            for h in [
                format!("bytes={len}-"),
                format!("bytes={}-{}", len + 5, len + 9),
            ] {
                let resp = plan.respond(&range(&h));
                assert_eq!(resp.status, 416, "{file} {h}");
                assert_eq!(plan.content_range(&resp).unwrap(), format!("bytes */{len}"));
            }
            // No Range, or one a server may ignore: the whole response.
            for h in [None, Some("bytes=0-1,5-9"), Some("items=0-1")] {
                let c = Conditions {
                    range: h,
                    ..Conditions::default()
                };
                let resp = plan.respond(&c);
                assert_eq!((resp.status, resp.first, resp.len), (200, 0, len));
            }
        }
    }
    eprintln!("range windows checked: {windows}");
}

#[test]
fn etags_tell_seeks_apart_and_repeat_for_the_same_seek() {
    common::needs_ffmpeg!();
    let r = reference("h264_aac.flvmeta.flv");
    let media = Media::open(&r.entry.path).unwrap();
    let a = r.seek_points[3];
    let b = r.seek_points[7];
    let plan_a = seek(&media, PrefixMode::Init, Some(Position::Bytes(a.1)));
    let plan_b = seek(&media, PrefixMode::Init, Some(Position::Bytes(b.1)));
    assert_ne!(plan_a.etag, plan_b.etag);
    // Same seek planned twice, by another route and from another handle.
    let again = Media::open(&r.entry.path).unwrap();
    let o = Options {
        start_unit: StartUnit::Seconds,
        ..stored_options()
    };
    let q = format!("start={}", common::secs(a.0));
    let plan_a2 = again
        .plan(&o, &query::parse(q.as_bytes(), &o).unwrap())
        .unwrap();
    assert_eq!(plan_a.etag, plan_a2.etag);
    assert_eq!(plan_a, plan_a2);
    // Other modes of one seek are other bytes: other tags.
    let tags: Vec<String> = [
        PrefixMode::None,
        PrefixMode::Header,
        PrefixMode::Init,
        PrefixMode::Full,
    ]
    .iter()
    .map(|&m| seek(&media, m, Some(Position::Bytes(a.1))).etag)
    .collect();
    for i in 0..tags.len() {
        for j in i + 1..tags.len() {
            assert_ne!(tags[i], tags[j], "modes {i} and {j}");
        }
    }
    let whole = seek(&media, PrefixMode::Init, None);
    assert_ne!(whole.etag, plan_a.etag);
    assert!(plan_a.etag.starts_with('"') && plan_a.etag.ends_with('"'));

    // Validators in use.
    let c = Conditions {
        if_none_match: Some(&plan_a.etag),
        ..Conditions::default()
    };
    assert_eq!(plan_a.respond(&c).status, 304);
    let c = Conditions {
        if_none_match: Some(&plan_b.etag),
        ..Conditions::default()
    };
    assert_eq!(plan_a.respond(&c).status, 200);
    let c = Conditions {
        range: Some("bytes=0-9"),
        if_range: Some(&plan_b.etag),
        ..Conditions::default()
    };
    assert_eq!(plan_a.respond(&c).status, 200, "stale If-Range sends all");
    let c = Conditions {
        range: Some("bytes=0-9"),
        if_range: Some(&plan_a.etag),
        ..Conditions::default()
    };
    assert_eq!(plan_a.respond(&c).status, 206);
    let c = Conditions {
        if_match: Some(&plan_b.etag),
        ..Conditions::default()
    };
    assert_eq!(plan_a.respond(&c).status, 412);
}

#[test]
fn etag_changes_with_the_file_version() {
    common::needs_ffmpeg!();
    let r = reference("video_only.yamdi.flv");
    let tmp = TempFile::with_bytes("etag.flv", &r.bytes);
    let start = Some(Position::Bytes(r.seek_points[2].1));
    let before = seek(&Media::open(tmp.path()).unwrap(), PrefixMode::Init, start);
    let f = OpenOptions::new().write(true).open(tmp.path()).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .unwrap();
    drop(f);
    let after = seek(&Media::open(tmp.path()).unwrap(), PrefixMode::Init, start);
    assert_eq!(before.prefix, after.prefix);
    assert_eq!(
        (before.file_from, before.file_to),
        (after.file_from, after.file_to)
    );
    assert_ne!(before.etag, after.etag, "same bytes, new version, new ETag");
}

#[test]
fn one_media_streams_to_many_threads_at_once() {
    common::needs_ffmpeg!();
    let r = reference("bframes.ffidx.flv");
    let media = Media::open(&r.entry.path).unwrap();
    let plans: Vec<Plan> = r
        .seek_points
        .iter()
        .map(|&(_, off)| seek(&media, PrefixMode::Full, Some(Position::Bytes(off))))
        .collect();
    let expected: Vec<Vec<u8>> = plans.iter().map(|p| body(&media, p)).collect();
    std::thread::scope(|s| {
        for t in 0..8 {
            let (media, plans, expected) = (&media, &plans, &expected);
            s.spawn(move || {
                for round in 0..3 {
                    let i = (t * 3 + round) % plans.len();
                    assert!(body(media, &plans[i]) == expected[i], "thread {t} plan {i}");
                }
            });
        }
    });
}

/// Drains a stream, returning what it delivered and how it ended.
fn drain_until_error(media: &Media, plan: &Plan, first: u64, len: u64) -> (u64, Option<Error>) {
    let mut stream = media.stream(plan, first, len).unwrap();
    let mut buf = vec![0u8; 16 * 1024];
    let mut delivered = 0;
    loop {
        match stream.fill(&mut buf, 0) {
            Ok(Fill::Data(n)) => delivered += n as u64,
            Ok(Fill::Done) => return (delivered, None),
            Ok(Fill::Wait(_)) => panic!("unpaced stream waits"),
            Err(e) => return (delivered, Some(e)),
        }
    }
}

#[test]
fn a_file_truncated_while_served_ends_the_stream_with_source_changed() {
    common::needs_ffmpeg!();
    for file in [
        "h264_aac.plain.flv",
        "audio_only_mp3.yamdi.flv",
        "long_ts.flv",
    ] {
        let r = reference(file);
        let tmp = TempFile::with_bytes("shrinking.flv", &r.bytes);
        let media = Media::open(tmp.path()).unwrap();
        let kf = r.seek_points[1];
        let plans = [
            seek(&media, PrefixMode::Init, Some(Position::Bytes(kf.1))),
            seek(&media, PrefixMode::Full, Some(Position::Bytes(kf.1))),
            seek(&media, PrefixMode::None, Some(Position::Bytes(kf.1 + 3))),
            seek(&media, PrefixMode::Init, None),
        ];
        let half = r.size() / 2;
        OpenOptions::new()
            .write(true)
            .open(tmp.path())
            .unwrap()
            .set_len(half)
            .unwrap();
        for plan in &plans {
            let (delivered, err) = drain_until_error(&media, plan, 0, plan.len());
            assert!(
                matches!(err, Some(Error::SourceChanged(_))),
                "{file}: ended with {err:?} after {delivered} of {} bytes",
                plan.len()
            );
            assert!(delivered < plan.len());
            assert!(delivered <= plan.prefix.len() as u64 + half - plan.file_from);
            // A Range window wholly past the new end fails at once...
            let late = plan.len() - 100;
            let (n, err) = drain_until_error(&media, plan, late, 100);
            assert!(
                matches!(err, Some(Error::SourceChanged(_))) && n == 0,
                "{file}"
            );
            // ...and one before it is still served.
            let (n, err) = drain_until_error(&media, plan, 0, plan.prefix.len() as u64 + 100);
            assert!(
                err.is_none() && n == plan.prefix.len() as u64 + 100,
                "{file}"
            );
        }
    }
}

/// One paced run: (microseconds since the first call, bytes so far) after
/// every delivery, and the bytes themselves.
fn paced(media: &Media, plan: &Plan, buf_len: usize) -> (Vec<(u64, u64)>, Vec<u8>) {
    let mut stream = media.stream(plan, 0, plan.len()).unwrap();
    let mut buf = vec![0u8; buf_len];
    let start = 86_400_000_000u64; // any origin
    let mut now = start;
    let mut out = Vec::new();
    let mut samples = Vec::new();
    loop {
        match stream.fill(&mut buf, now).unwrap() {
            Fill::Data(n) => {
                assert!(n > 0);
                out.extend_from_slice(&buf[..n]);
                samples.push((now - start, out.len() as u64));
            }
            Fill::Wait(us) => {
                assert!(us > 0, "a wait of 0 us would spin");
                now += us;
            }
            Fill::Done => break,
        }
    }
    (samples, out)
}

fn sent_at_zero(samples: &[(u64, u64)]) -> u64 {
    samples
        .iter()
        .filter(|s| s.0 == 0)
        .map(|s| s.1)
        .max()
        .unwrap_or(0)
}

/// Sustained rate after the burst, and never more than half a piece ahead
/// of the schedule: a piece goes when the schedule reaches its middle,
/// whatever the host's buffer.
fn check_rate(label: &str, samples: &[(u64, u64)], burst: u64, rate: u64) {
    let half_piece = pseudostream::Pacer::new(burst, rate).piece() / 2;
    for &(t, sent) in samples {
        let allowed = burst + half_piece + (u128::from(t) * u128::from(rate) / 1_000_000) as u64;
        assert!(
            sent <= allowed,
            "{label}: {sent} bytes by {t} us > {allowed}"
        );
    }
    let &(t_end, total) = samples.last().unwrap();
    let measured = (total - burst) as f64 / (t_end as f64 / 1e6);
    let err = (measured - rate as f64).abs() / rate as f64;
    eprintln!("{label}: {total} bytes, {t_end} us, {measured:.0} B/s (target {rate})");
    assert!(err < 0.01, "{label}: measured {measured:.1} B/s vs {rate}");
}

#[test]
fn paced_stream_sends_the_burst_at_once_then_holds_the_rate() {
    common::needs_ffmpeg!();
    let r = reference("h264_aac.plain.flv");
    let media = Media::open(&r.entry.path).unwrap();
    let kf = r.seek_points[2];
    let cases = [
        (100_000u64, 50_000u64, 64 * 1024usize),
        (300_000, 40_000, 64 * 1024),
        (65_536, 20_000, 16 * 1024),
        (50_000, 30_000, 10_000),
    ];
    for (burst, rate, buf_len) in cases {
        let options = Options {
            pacing: Pacing {
                burst: Burst::Bytes(burst),
                rate: Rate::BytesPerSecond(rate),
            },
            ..stored_options()
        };
        let req = Request {
            start: Some(Position::Bytes(kf.1)),
            ..Request::default()
        };
        let plan = media.plan(&options, &req).unwrap();
        assert_eq!((plan.burst_bytes, plan.rate_bytes_per_s), (burst, rate));
        let label = format!("burst {burst} rate {rate} buffer {buf_len}");
        let (samples, out) = paced(&media, &plan, buf_len);
        let unpaced = Plan {
            rate_bytes_per_s: 0,
            ..plan.clone()
        };
        assert!(out == body(&media, &unpaced), "{label}: paced bytes differ");
        assert_eq!(sent_at_zero(&samples), burst, "{label}: burst at t=0");
        check_rate(&label, &samples, burst, rate);
    }
}

#[test]
fn burst_tail_smaller_than_a_send_quantum_still_goes_at_t0() {
    common::needs_ffmpeg!();
    // A host with 16 KiB buffers: 100 000 = 6 x 16 384 + 1 696 bytes. The
    // burst is all sent at t=0 only if the last 1 696 bytes are not held back.
    let r = reference("h264_aac.plain.flv");
    let media = Media::open(&r.entry.path).unwrap();
    let options = Options {
        pacing: Pacing {
            burst: Burst::Bytes(100_000),
            rate: Rate::BytesPerSecond(50_000),
        },
        ..stored_options()
    };
    let plan = media.plan(&options, &Request::default()).unwrap();
    let (samples, out) = paced(&media, &plan, 16 * 1024);
    assert!(out == r.bytes);
    check_rate("16 KiB buffers", &samples, 100_000, 50_000);
    // The burst's last 1 696 bytes are smaller than the send quantum
    // (rate/20 = 2 500 B); they must still go out with the burst at t = 0.
    assert_eq!(
        sent_at_zero(&samples),
        100_000,
        "burst bytes delivered at t=0"
    );
}

#[test]
fn pacing_from_the_query_and_from_media_bitrate() {
    common::needs_ffmpeg!();
    let r = reference("bframes.flvmeta.flv");
    let media = Media::open(&r.entry.path).unwrap();
    let bitrate = media.info().bitrate_bps;
    assert!(bitrate > 0);
    // ri/rs from the client (rs in kbit/s).
    let o = stored_options();
    let req = query::parse(b"start=0&ri=80000&rs=480", &o).unwrap();
    let plan = media.plan(&o, &req).unwrap();
    assert_eq!((plan.burst_bytes, plan.rate_bytes_per_s), (80_000, 60_000));
    let (samples, out) = paced(&media, &plan, 32 * 1024);
    assert!(out == r.bytes);
    assert_eq!(sent_at_zero(&samples), 80_000);
    check_rate("query ri/rs", &samples, 80_000, 60_000);
    // A host that refuses client pacing.
    let strict = Options {
        client_pacing: false,
        ..stored_options()
    };
    let plan = media.plan(&strict, &req).unwrap();
    assert_eq!(plan.rate_bytes_per_s, 0);
    // Burst in media time and rate relative to the average bitrate.
    let auto = Options {
        pacing: Pacing {
            burst: Burst::MediaMillis(2000),
            rate: Rate::Auto { permille: 1500 },
        },
        ..stored_options()
    };
    let plan = media.plan(&auto, &Request::default()).unwrap();
    assert_eq!(plan.burst_bytes, bitrate * 2000 / 8000);
    assert_eq!(plan.rate_bytes_per_s, bitrate * 1500 / 8000);
    let (samples, _) = paced(&media, &plan, 64 * 1024);
    check_rate("auto", &samples, plan.burst_bytes, plan.rate_bytes_per_s);
}
