//! Host configuration by name: one vocabulary and one parser for every
//! host. nginx writes `pseudostream_<key>`, lighttpd `pseudostream.<key>`,
//! PHP and Ruby `PSEUDOSTREAM_<KEY>`, .NET `pseudostream:<key>`, the example
//! host `--<key>`; each passes the key and its value here as strings.
//! Defaults live here and in `plan::Options` only.

use crate::error::{Error, Result};
use crate::plan::{Burst, Rate};
use crate::plan::{CutMode, MetadataMode, Options, PrefixMode, StartUnit};

/// Who may read responses from another origin (CORS).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Cors {
    /// No CORS headers; OPTIONS is not allowed.
    #[default]
    Off,
    /// Any origin (`Access-Control-Allow-Origin: *`).
    Any,
    /// These origins (`scheme://host[:port]`, compared without regard to
    /// case); responses say `Vary: Origin`.
    Origins(Vec<String>),
}

/// Everything a host configures: how requests are planned and how the
/// library answers them over HTTP. A configuration changed through its
/// fields rather than `set` must be `touch`ed: answers are remembered per
/// configuration (see `exchange`).
#[derive(Clone, Debug)]
pub struct Config {
    pub plan: Options,
    pub cors: Cors,
    /// A Cache-Control value for 200, 206 and 304 answers.
    pub cache_control: Option<String>,
    /// Tells this configuration's versions apart from every other's.
    generation: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            plan: Options::default(),
            cors: Cors::default(),
            cache_control: None,
            generation: next_generation(),
        }
    }
}

impl PartialEq for Config {
    fn eq(&self, other: &Config) -> bool {
        self.plan == other.plan
            && self.cors == other.cors
            && self.cache_control == other.cache_control
    }
}

impl Eq for Config {}

fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// One documented name and what it sets.
struct Key {
    name: &'static str,
    aliases: &'static [&'static str],
    /// What the value may be, for error messages and `describe`.
    takes: &'static str,
    set: fn(&mut Config, &str) -> std::result::Result<(), String>,
}

/// Query parameters by their default names, as `param_<name>` keys take
/// them.
const PARAMS: [&str; 9] = [
    "start", "end", "ib", "fs", "bstart", "bend", "ri", "rs", "format",
];

const KEYS: &[Key] = &[
    Key {
        name: "prefix",
        aliases: &[],
        takes: "none, header, init (default) or full",
        set: |c, v| {
            c.plan.prefix = one_of(v, &["none", "header", "init", "full"], PrefixMode::parse)?;
            Ok(())
        },
    },
    Key {
        name: "start_unit",
        aliases: &["unit"],
        takes: "bytes (default) or seconds",
        set: |c, v| {
            c.plan.start_unit = one_of(v, &["bytes", "seconds"], |v| match v {
                "bytes" => Some(StartUnit::Bytes),
                "seconds" => Some(StartUnit::Seconds),
                _ => None,
            })?;
            Ok(())
        },
    },
    Key {
        name: "metadata",
        aliases: &[],
        takes: "off, missing (default) or always",
        set: |c, v| {
            c.plan.metadata = one_of(v, &["off", "missing", "always"], MetadataMode::parse)?;
            Ok(())
        },
    },
    Key {
        name: "cut",
        aliases: &["mp4_cut"],
        takes: "exact (default) or keyframe",
        set: |c, v| {
            c.plan.cut = one_of(v, &["exact", "keyframe"], CutMode::parse)?;
            Ok(())
        },
    },
    Key {
        name: "faststart",
        aliases: &["mp4_faststart"],
        takes: "on (default) or off",
        set: |c, v| {
            c.plan.faststart = boolean(v)?;
            Ok(())
        },
    },
    Key {
        name: "rate",
        aliases: &[],
        takes: "off (default), bytes per second (100000, 800k, 2m), auto or auto:FACTOR \
                (the media's average bitrate times FACTOR, 1.25 unless given)",
        set: |c, v| {
            c.plan.pacing.rate = rate(v)?;
            Ok(())
        },
    },
    Key {
        name: "burst",
        aliases: &[],
        takes: "a size (256k, 0) or media time (3s, 1500ms); default 3s",
        set: |c, v| {
            c.plan.pacing.burst = match time_ms(v, None) {
                Ok(ms) => Burst::MediaMillis(ms),
                Err(_) => Burst::Bytes(size(v).map_err(|_| {
                    format!("'{v}' is neither a size (256k) nor a time (3s, 1500ms)")
                })?),
            };
            Ok(())
        },
    },
    Key {
        name: "burst_bytes",
        aliases: &[],
        takes: "a size (256k, 0)",
        set: |c, v| {
            c.plan.pacing.burst = Burst::Bytes(size(v)?);
            Ok(())
        },
    },
    Key {
        name: "burst_time",
        aliases: &[],
        takes: "media time (5s, 1500ms; a bare number is milliseconds)",
        set: |c, v| {
            c.plan.pacing.burst = Burst::MediaMillis(time_ms(v, Some(1))?);
            Ok(())
        },
    },
    Key {
        name: "burst_seconds",
        aliases: &["duration"],
        takes: "seconds of media (3, 2.5)",
        set: |c, v| {
            c.plan.pacing.burst = Burst::MediaMillis(time_ms(v, Some(1000))?);
            Ok(())
        },
    },
    Key {
        name: "client_pacing",
        aliases: &[],
        takes: "on (default) or off",
        set: |c, v| {
            c.plan.client_pacing = boolean(v)?;
            Ok(())
        },
    },
    Key {
        name: "cors",
        aliases: &[],
        takes: "off (default), * or origins (https://a.example https://b.example:8443)",
        set: |c, v| {
            c.cors = cors(v)?;
            Ok(())
        },
    },
    Key {
        name: "cache_control",
        aliases: &[],
        takes: "a Cache-Control value (max-age=3600), or off (default)",
        set: |c, v| {
            let v = v.trim();
            if v.bytes().any(|b| b < b' ' && b != b'\t' || b == 0x7f) {
                return Err("a header value cannot hold control characters".into());
            }
            c.cache_control = (!v.is_empty() && v != "off").then(|| v.to_string());
            Ok(())
        },
    },
    Key {
        name: "param",
        aliases: &["params"],
        takes: "a parameter and its new name (start pos, start=pos); an empty name turns it off",
        set: |c, v| {
            let v = v.trim();
            let (which, name) = v
                .split_once(['=', ' ', '\t'])
                .map_or((v, ""), |(a, b)| (a.trim(), b.trim()));
            param(c, which, name)
        },
    },
    Key {
        name: "param_start",
        aliases: &[],
        takes: "a query parameter name",
        set: |c, v| param(c, "start", v),
    },
    Key {
        name: "param_end",
        aliases: &[],
        takes: "a query parameter name",
        set: |c, v| param(c, "end", v),
    },
    Key {
        name: "param_ib",
        aliases: &[],
        takes: "a query parameter name",
        set: |c, v| param(c, "ib", v),
    },
    Key {
        name: "param_fs",
        aliases: &[],
        takes: "a query parameter name",
        set: |c, v| param(c, "fs", v),
    },
    Key {
        name: "param_bstart",
        aliases: &[],
        takes: "a query parameter name",
        set: |c, v| param(c, "bstart", v),
    },
    Key {
        name: "param_bend",
        aliases: &[],
        takes: "a query parameter name",
        set: |c, v| param(c, "bend", v),
    },
    Key {
        name: "param_ri",
        aliases: &[],
        takes: "a query parameter name",
        set: |c, v| param(c, "ri", v),
    },
    Key {
        name: "param_rs",
        aliases: &[],
        takes: "a query parameter name",
        set: |c, v| param(c, "rs", v),
    },
    Key {
        name: "param_format",
        aliases: &[],
        takes: "a query parameter name",
        set: |c, v| param(c, "format", v),
    },
    Key {
        name: "flv_output",
        aliases: &["flv_as"],
        takes: "flv (default) or mp4: what FLV files are served as when a request does not say",
        set: |c, v| {
            c.plan.flv_output = one_of(v, &["flv", "mp4"], crate::plan::Output::parse)?;
            Ok(())
        },
    },
    Key {
        name: "mp4_max_moov_size",
        aliases: &["moov_limit", "mp4_moov_limit"],
        takes: "a size (64m, default; 0 restores the default); process-wide",
        set: |_, v| {
            crate::index::mp4::set_moov_limit(size(v)?);
            Ok(())
        },
    },
    Key {
        name: "index_cache",
        aliases: &["cache_size", "index_cache_size"],
        takes: "a size (64m, default; 0: no cache); process-wide",
        set: |_, v| {
            let bytes = size(v)?;
            crate::cache::IndexCache::global()
                .set_capacity(usize::try_from(bytes).unwrap_or(usize::MAX));
            Ok(())
        },
    },
];

impl Config {
    /// Sets one option by name. Names are read without regard to case, with
    /// `-`, `.` and `:` read as `_` and camelCase as snake_case
    /// (`start-unit`, `startUnit` and `START_UNIT` are `start_unit`).
    /// `mp4_max_moov_size` and `index_cache` are process-wide: they take
    /// effect at once for every configuration. A bad key or value is an
    /// `InvalidArgument` that names both.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let name = normalize(key);
        let k = KEYS
            .iter()
            .find(|k| k.name == name || k.aliases.contains(&name.as_str()))
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown option '{key}' (known: {})",
                    KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
                ))
            })?;
        (k.set)(self, value).map_err(|why| {
            Error::InvalidArgument(format!("option '{}' = '{value}': {why}", k.name))
        })?;
        self.touch();
        Ok(())
    }

    /// Marks the configuration as changed (after changing its fields
    /// directly): answers remembered for it are no longer used.
    pub fn touch(&mut self) {
        self.generation = next_generation();
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Every key with what it takes, one per line (for `--help` and docs).
    pub fn describe() -> String {
        let mut out = String::new();
        for k in KEYS {
            out.push_str(k.name);
            for a in k.aliases {
                out.push_str(" | ");
                out.push_str(a);
            }
            out.push_str(": ");
            out.push_str(k.takes);
            out.push('\n');
        }
        out
    }
}

/// `Start-Unit`, `start-unit`, `startUnit`, `pseudostream.start_unit` → `start_unit`.
fn normalize(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    let mut prev_lower = false;
    for c in key.trim().chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push('_');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(match c {
            '-' | '.' | ':' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        });
    }
    out
}

fn one_of<T>(
    v: &str,
    names: &[&str],
    parse: impl Fn(&str) -> Option<T>,
) -> std::result::Result<T, String> {
    parse(v.trim()).ok_or_else(|| format!("'{v}' is not one of {}", names.join(", ")))
}

/// A byte count: digits with an optional k, m or g (1024, 1024², 1024³), as
/// nginx reads sizes.
pub fn size(v: &str) -> std::result::Result<u64, String> {
    let v = v.trim();
    let (digits, scale) = match v.as_bytes().last() {
        Some(b'k' | b'K') => (&v[..v.len() - 1], 1u64 << 10),
        Some(b'm' | b'M') => (&v[..v.len() - 1], 1 << 20),
        Some(b'g' | b'G') => (&v[..v.len() - 1], 1 << 30),
        _ => (v, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{v}' is not a size (1000, 256k, 64m, 1g)"));
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("'{v}' overflows"))
}

/// Media time in milliseconds: `3s`, `1500ms`, `2.5s`, `1m`; a bare number
/// counts `bare_ms` milliseconds per unit (None: a unit is required).
fn time_ms(v: &str, bare_ms: Option<u64>) -> std::result::Result<u64, String> {
    let v = v.trim();
    let bad = || format!("'{v}' is not a time (3s, 1500ms, 2.5s)");
    let (number, per_unit) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60_000)
    } else {
        (v, bare_ms.ok_or_else(bad)?)
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 6 {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let frac_value: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| bad())?
    };
    let frac_ms = frac_value * per_unit / 10u64.pow(frac.len() as u32);
    whole
        .checked_mul(per_unit)
        .and_then(|w| w.checked_add(frac_ms))
        .ok_or_else(|| format!("'{v}' overflows"))
}

fn boolean(v: &str) -> std::result::Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" | "enable" => Ok(true),
        "off" | "false" | "no" | "0" | "disable" => Ok(false),
        _ => Err(format!("'{v}' is not one of on, off")),
    }
}

/// The default factor of `auto`, in thousandths.
pub const AUTO_RATE_PERMILLE: u32 = 1250;

fn rate(v: &str) -> std::result::Result<Rate, String> {
    let t = v.trim();
    if t == "off" || t == "0" {
        return Ok(Rate::Off);
    }
    if let Some(rest) = t.strip_prefix("auto") {
        let factor = rest.trim_start_matches([':', ' ', '\t']).trim();
        if factor.is_empty() {
            return Ok(Rate::Auto {
                permille: AUTO_RATE_PERMILLE,
            });
        }
        let bad = || format!("'{factor}' is not a factor above 0 and at most 100 (1.25)");
        let (whole, frac) = factor.split_once('.').unwrap_or((factor, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
            return Err(bad());
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let mut permille = whole.saturating_mul(1000);
        for (i, b) in frac.bytes().take(3).enumerate() {
            permille += u64::from(b - b'0') * [100, 10, 1][i];
        }
        if permille == 0 || permille > 100_000 {
            return Err(bad());
        }
        return Ok(Rate::Auto {
            permille: permille as u32,
        });
    }
    match size(t) {
        Ok(0) => Ok(Rate::Off),
        Ok(n) => Ok(Rate::BytesPerSecond(n)),
        Err(_) => Err(format!(
            "'{v}' is not a rate (off, bytes per second such as 800k, auto or auto:1.25)"
        )),
    }
}

fn cors(v: &str) -> std::result::Result<Cors, String> {
    let v = v.trim();
    match v {
        "" | "off" => return Ok(Cors::Off),
        "*" => return Ok(Cors::Any),
        _ => {}
    }
    let mut origins = Vec::new();
    for o in v.split([' ', ',', '\t']).filter(|o| !o.is_empty()) {
        let valid = o.split_once("://").is_some_and(|(scheme, host)| {
            !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                && !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        });
        if !valid {
            return Err(format!(
                "'{o}' is not an origin (scheme://host[:port], no path), * or off"
            ));
        }
        origins.push(o.to_ascii_lowercase());
    }
    Ok(Cors::Origins(origins))
}

/// Renames the parameter whose default name is `which`.
fn param(c: &mut Config, which: &str, name: &str) -> std::result::Result<(), String> {
    let slot = PARAMS
        .iter()
        .position(|p| *p == which)
        .ok_or_else(|| format!("unknown parameter '{which}' (one of {})", PARAMS.join(", ")))?;
    if name
        .bytes()
        .any(|b| b <= b' ' || b == 0x7f || b"&=#;+%".contains(&b))
    {
        return Err(format!("invalid query parameter name '{name}'"));
    }
    let n = &mut c.plan.names;
    let slots = [
        &mut n.start,
        &mut n.end,
        &mut n.initial_bytes,
        &mut n.file_start,
        &mut n.byte_start,
        &mut n.byte_end,
        &mut n.burst,
        &mut n.rate,
        &mut n.format,
    ];
    if !name.is_empty()
        && slots
            .iter()
            .enumerate()
            .any(|(i, other)| i != slot && other.as_str() == name)
    {
        return Err(format!(
            "parameter name '{name}' is already used by another parameter"
        ));
    }
    *slots.into_iter().nth(slot).expect("a slot per parameter") = name.to_string();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_every_host_spelling() {
        for key in [
            "start_unit",
            "start-unit",
            "startUnit",
            "START_UNIT",
            "unit",
        ] {
            let mut c = Config::default();
            c.set(key, "seconds").unwrap();
            assert_eq!(c.plan.start_unit, StartUnit::Seconds, "{key}");
        }
        let mut c = Config::default();
        c.set("mp4MaxMoovSize", "64m").unwrap();
        c.set("param:start", "pos").unwrap();
        assert_eq!(c.plan.names.start, "pos");
        c.set("param", "end stop").unwrap();
        c.set("param", "bstart=from").unwrap();
        assert_eq!(
            (c.plan.names.end.as_str(), c.plan.names.byte_start.as_str()),
            ("stop", "from")
        );
    }

    #[test]
    fn values_of_each_kind() {
        let mut c = Config::default();
        for (v, want) in [
            ("auto", Rate::Auto { permille: 1250 }),
            ("auto:1.5", Rate::Auto { permille: 1500 }),
            ("auto 2", Rate::Auto { permille: 2000 }),
            ("800k", Rate::BytesPerSecond(819_200)),
            ("100000", Rate::BytesPerSecond(100_000)),
            ("off", Rate::Off),
            ("0", Rate::Off),
        ] {
            c.set("rate", v).unwrap();
            assert_eq!(c.plan.pacing.rate, want, "{v}");
        }
        for (k, v, want) in [
            ("burst", "3s", Burst::MediaMillis(3000)),
            ("burst", "1500ms", Burst::MediaMillis(1500)),
            ("burst", "256k", Burst::Bytes(262_144)),
            ("burst", "0", Burst::Bytes(0)),
            ("burst_time", "5s", Burst::MediaMillis(5000)),
            ("burst_time", "700", Burst::MediaMillis(700)),
            ("burst_seconds", "2.5", Burst::MediaMillis(2500)),
            ("duration", "3", Burst::MediaMillis(3000)),
            ("burst_bytes", "1m", Burst::Bytes(1 << 20)),
        ] {
            c.set(k, v).unwrap();
            assert_eq!(c.plan.pacing.burst, want, "{k} {v}");
        }
        c.set("cors", "*").unwrap();
        assert_eq!(c.cors, Cors::Any);
        c.set("cors", "https://A.example, http://b.example:8080")
            .unwrap();
        assert_eq!(
            c.cors,
            Cors::Origins(vec![
                "https://a.example".into(),
                "http://b.example:8080".into()
            ])
        );
        c.set("cache_control", "max-age=60").unwrap();
        assert_eq!(c.cache_control.as_deref(), Some("max-age=60"));
        c.set("client_pacing", "off").unwrap();
        assert!(!c.plan.client_pacing);
    }

    #[test]
    fn errors_name_the_key_and_the_value() {
        let mut c = Config::default();
        for (k, v, says) in [
            ("rate", "fast", "'fast' is not a rate"),
            ("rate", "auto 0", "not a factor"),
            ("burst", "3 s", "neither a size"),
            ("prefix", "all", "is not one of"),
            ("param", "begin t", "unknown parameter 'begin'"),
            ("param_start", "a&b", "invalid query parameter name"),
            ("param_end", "start", "already used"),
            ("index_cache", "lots", "not a size"),
            ("cors", "example.com/x", "not an origin"),
        ] {
            let e = c.set(k, v).unwrap_err().to_string();
            assert!(
                e.contains(&format!("'{v}'")) && e.contains(says),
                "{k} {v}: {e}"
            );
        }
        let e = c.set("colour", "blue").unwrap_err().to_string();
        assert!(e.contains("unknown option 'colour'"), "{e}");
        assert_eq!(c, Config::default(), "a refused value changes nothing");
    }
}
