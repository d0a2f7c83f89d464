//! HTTP semantics over a plan (RFC 9110 §13 preconditions, §14 ranges), so
//! every host answers conditional and Range requests the same way.

use super::range::{self, RangeOutcome};
use super::Plan;

/// Request header values that shape the response (None: header absent).
#[derive(Clone, Copy, Debug, Default)]
pub struct Conditions<'a> {
    pub range: Option<&'a str>,
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub if_range: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub if_unmodified_since: Option<&'a str>,
}

/// What to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    /// 200, 206, 304, 412 or 416.
    pub status: u16,
    /// The window of the plan's response to send (empty for 304/412/416).
    pub first: u64,
    pub len: u64,
    /// Pacing of this window: `burst_bytes` from its first byte, then
    /// `rate_bytes_per_s` (0 = unpaced). See `Response::paced`.
    pub burst_bytes: u64,
    pub rate_bytes_per_s: u64,
}

impl Response {
    /// The pacing policy, the same for every host: a response that carries
    /// a body (200 or 206, whatever the query, Range or If-Range) is paced
    /// by its plan, the burst counting from the first byte of the window
    /// sent, since that is where the player starts to play or resumes.
    /// Bodyless answers (304, 412, 416, and HEAD, which sends no body
    /// whatever this says) have nothing to pace.
    fn paced(status: u16, first: u64, len: u64, plan: &Plan) -> Response {
        let body = matches!(status, 200 | 206) && len > 0 && plan.rate_bytes_per_s > 0;
        Response {
            status,
            first,
            len,
            burst_bytes: if body { plan.burst_bytes } else { 0 },
            rate_bytes_per_s: if body { plan.rate_bytes_per_s } else { 0 },
        }
    }
}

impl Plan {
    /// Evaluates preconditions and Range in RFC 9110's order (§13.2.2) for
    /// a GET (HEAD answers the same, without a body). Dates are compared
    /// with the file's modification time in whole seconds, as its
    /// Last-Modified says; a date that does not parse is ignored.
    pub fn respond(&self, c: &Conditions) -> Response {
        let total = self.len();
        let status_only = |status| Response::paced(status, 0, 0, self);
        let date = |v: Option<&str>| v.and_then(crate::httpdate::parse);
        match c.if_match {
            Some(list) => {
                if !etag_list_matches(list, &self.etag, false) {
                    return status_only(412);
                }
            }
            None => {
                if let (Some(since), Some(modified)) =
                    (date(c.if_unmodified_since), self.last_modified)
                {
                    if modified > since {
                        return status_only(412);
                    }
                }
            }
        }
        match c.if_none_match {
            Some(list) => {
                if etag_list_matches(list, &self.etag, true) {
                    return status_only(304);
                }
            }
            None => {
                if let (Some(since), Some(modified)) =
                    (date(c.if_modified_since), self.last_modified)
                {
                    if modified <= since {
                        return status_only(304);
                    }
                }
            }
        }
        // If-Range that no longer holds: the client's copy is stale, send all.
        let range_header = match c.if_range {
            Some(v) if !self.if_range_holds(v.trim()) => None,
            _ => c.range,
        };
        match range::resolve(range_header, total) {
            RangeOutcome::Full => Response::paced(200, 0, total, self),
            RangeOutcome::Partial { first, len } => Response::paced(206, first, len, self),
            RangeOutcome::Unsatisfiable => status_only(416),
        }
    }

    /// If-Range holds for the plan's strong ETag, or for its Last-Modified
    /// date exactly.
    fn if_range_holds(&self, value: &str) -> bool {
        if value.starts_with('"') || value.starts_with("W/") {
            return strong_eq(value, &self.etag);
        }
        crate::httpdate::parse(value).is_some_and(|d| Some(d) == self.last_modified)
    }

    /// The Content-Range value for a response: `bytes a-b/len` for 206,
    /// `bytes */len` for 416, None otherwise.
    pub fn content_range(&self, r: &Response) -> Option<String> {
        match r.status {
            206 => Some(range::content_range(r.first, r.len, self.len())),
            416 => Some(format!("bytes */{}", self.len())),
            _ => None,
        }
    }
}

/// `*` or a comma-separated list of entity tags containing `etag`; weak
/// comparison ignores `W/` prefixes.
fn etag_list_matches(list: &str, etag: &str, weak: bool) -> bool {
    let list = list.trim();
    if list == "*" {
        return true;
    }
    list.split(',').map(str::trim).any(|candidate| {
        if weak {
            strip_weak(candidate) == strip_weak(etag)
        } else {
            strong_eq(candidate, etag)
        }
    })
}

fn strong_eq(a: &str, b: &str) -> bool {
    !a.starts_with("W/") && !b.starts_with("W/") && a == b
}

fn strip_weak(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let mut p = crate::plan::tests::plan(13, 100, 1087);
        p.etag = "\"abc\"".into();
        p.last_modified = Some(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        p
    }

    fn respond(c: Conditions) -> (u16, u64, u64) {
        let r = plan().respond(&c);
        (r.status, r.first, r.len)
    }

    #[test]
    fn precedence_and_validators() {
        assert_eq!(respond(Conditions::default()), (200, 0, 1000));
        let range = Some("bytes=10-19");
        assert_eq!(
            respond(Conditions {
                range,
                ..Default::default()
            }),
            (206, 10, 10)
        );
        let c = Conditions {
            if_none_match: Some("\"x\", W/\"abc\""),
            ..Default::default()
        };
        assert_eq!(respond(c).0, 304);
        let c = Conditions {
            if_none_match: Some("*"),
            ..Default::default()
        };
        assert_eq!(respond(c).0, 304);
        let c = Conditions {
            if_match: Some("\"zzz\""),
            range,
            ..Default::default()
        };
        assert_eq!(respond(c).0, 412);
        let c = Conditions {
            if_match: Some("W/\"abc\""),
            ..Default::default()
        };
        assert_eq!(respond(c).0, 412, "If-Match uses strong comparison");
        let c = Conditions {
            if_match: Some("\"abc\""),
            range,
            ..Default::default()
        };
        assert_eq!(respond(c), (206, 10, 10));
        let c = Conditions {
            if_range: Some("\"old\""),
            range,
            ..Default::default()
        };
        assert_eq!(respond(c), (200, 0, 1000));
        let c = Conditions {
            if_range: Some("\"abc\""),
            range,
            ..Default::default()
        };
        assert_eq!(respond(c), (206, 10, 10));
        let c = Conditions {
            range: Some("bytes=5000-"),
            ..Default::default()
        };
        let r = plan().respond(&c);
        assert_eq!(r.status, 416);
        assert_eq!(plan().content_range(&r).unwrap(), "bytes */1000");
        let r = plan().respond(&Conditions {
            range,
            ..Default::default()
        });
        assert_eq!(plan().content_range(&r).unwrap(), "bytes 10-19/1000");
    }

    #[test]
    fn dates_in_rfc_9110_order() {
        let at = "Sun, 06 Nov 1994 08:49:37 GMT";
        let before = "Sun, 06 Nov 1994 08:49:36 GMT";
        let after = "Mon, 07 Nov 1994 00:00:00 GMT";
        let status = |c: Conditions| plan().respond(&c).status;
        let ims = |d| Conditions {
            if_modified_since: Some(d),
            ..Default::default()
        };
        assert_eq!(status(ims(at)), 304);
        assert_eq!(status(ims(after)), 304, "later than the file: not modified");
        assert_eq!(status(ims(before)), 200);
        assert_eq!(status(ims("garbage")), 200);
        let c = Conditions {
            if_none_match: Some("\"other\""),
            ..ims(at)
        };
        assert_eq!(status(c), 200, "If-None-Match overrides If-Modified-Since");
        let ius = |d| Conditions {
            if_unmodified_since: Some(d),
            ..Default::default()
        };
        assert_eq!(status(ius(before)), 412);
        assert_eq!(status(ius(at)), 200);
        assert_eq!(status(ius(after)), 200);
        assert_eq!(status(ius("not a date")), 200);
        let c = Conditions {
            if_match: Some("\"abc\""),
            ..ius(before)
        };
        assert_eq!(status(c), 200, "If-Match overrides If-Unmodified-Since");
        let c = Conditions {
            if_none_match: Some("\"abc\""),
            ..ius(before)
        };
        assert_eq!(status(c), 412, "412 before 304");
        let range = Some("bytes=10-19");
        let c = Conditions {
            range,
            if_range: Some(at),
            ..Default::default()
        };
        assert_eq!(status(c), 206);
        let c = Conditions {
            range,
            if_range: Some(before),
            ..Default::default()
        };
        assert_eq!(status(c), 200);
        let mut undated = plan();
        undated.last_modified = None;
        assert_eq!(undated.respond(&ims(after)).status, 200);
    }
}
