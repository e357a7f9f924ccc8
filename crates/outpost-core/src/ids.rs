//! The shapes of identifiers and values taken from outside, each checked by one function:
//! run identifiers (job admission, `outpost upload`, the control plane), which become path
//! segments, label values and, for a connection, part of a Secret's name; Kubernetes names;
//! ingest allow-list entries (checked by the compiler, applied by `outpost upload`); and Go
//! durations (descriptors and agent options, which Argo parses).

use std::time::Duration;

/// How [`is_dns_label`] is explained in error messages.
pub const DNS_LABEL_SHAPE: &str =
    "1-63 lowercase letters, digits or `-`, starting and ending with a letter or digit";
/// How [`is_path_segment`] is explained in error messages.
pub const PATH_SEGMENT_SHAPE: &str = "1-128 letters, digits, `.`, `_` or `-`, and not `.` or `..`";

/// A DNS label (RFC 1123): 1-63 lowercase letters, digits or `-`, starting and ending with a
/// letter or digit. What a connection id must be: it names `outpost-source-<connection>`.
pub fn is_dns_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

/// A path inside a run, as its manifest lists it (`a/b.zst`): no leading `/`, no `.`/`..`/
/// empty segments, no backslashes or control characters. What every reader of a manifest
/// checks before it opens, sends or fetches a listed file.
pub fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

/// A safe path segment: 1-128 letters, digits, `.`, `_` or `-`, and not `.` or `..`. What job
/// and run ids must be (UUIDs and timestamps fit).
pub fn is_path_segment(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value != "."
        && value != ".."
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// An entry of the direct-ingestion host allow-list: a host name (`storage.googleapis.com`)
/// or `*.` and a suffix of at least two labels (`*.blob.core.windows.net`), case-insensitive,
/// a trailing dot ignored. Answers whether it is a wildcard, and the name or suffix in
/// lowercase. IP addresses, loopback names, schemes, ports, paths, a `*` anywhere else and
/// a wildcard over a top-level domain are refused, each with the reason.
pub fn ingest_host_pattern(entry: &str) -> Result<(bool, String), String> {
    let entry = entry.trim().trim_end_matches('.').to_ascii_lowercase();
    let (wildcard, name) = match entry.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, entry.as_str()),
    };
    if name.parse::<std::net::IpAddr>().is_ok()
        || name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::Ipv6Addr>()
            .is_ok()
    {
        return Err("an IP address; only host names may be allowed".to_owned());
    }
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !labels.iter().all(label_ok) {
        return Err(
            "not a host name (letters, digits and `-` in dot-separated labels; `*.` only as a prefix; no scheme, port or path)"
                .to_owned(),
        );
    }
    // URL parsers read a numeric last label as an IPv4 address (`1.2.3.4`, `0x7f.1`).
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()) || l.starts_with("0x"))
    {
        return Err("ends in a numeric label, which URLs read as an IP address".to_owned());
    }
    if name == "localhost" || name.ends_with(".localhost") {
        return Err(
            "loopback is not a host to allow; use the loopback opt-in, for tests only".to_owned(),
        );
    }
    if wildcard && labels.len() < 2 {
        return Err(format!(
            "`*.{name}` would allow a whole top-level domain; a wildcard needs at least two labels after `*.`"
        ));
    }
    Ok((wildcard, name.to_owned()))
}

/// A Go duration as Argo's fields take it (Go's `time.ParseDuration`): one or more
/// `<number><unit>` (`30s`, `1m30s`, `1.5h`, `300ms`), units `ns`, `us` (`µs`), `ms`, `s`,
/// `m`, `h`. No sign and no bare `0`: a descriptor or an option never needs either.
pub fn is_go_duration(text: &str) -> bool {
    go_duration(text).is_some()
}

/// The length of a Go duration ([`is_go_duration`]), or `None` when `text` is not one.
pub fn go_duration(text: &str) -> Option<Duration> {
    // Longest first, so `ms` is not read as `m` then `s`.
    const UNITS: [(&str, f64); 8] = [
        ("ns", 1e-9),
        ("us", 1e-6),
        ("µs", 1e-6),
        ("μs", 1e-6),
        ("ms", 1e-3),
        ("h", 3600.0),
        ("m", 60.0),
        ("s", 1.0),
    ];
    let mut rest = text;
    let mut seconds = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let whole = rest.bytes().take_while(u8::is_ascii_digit).count();
        let fraction = match rest[whole..].strip_prefix('.') {
            Some(after) => 1 + after.bytes().take_while(u8::is_ascii_digit).count(),
            None => 0,
        };
        // Go takes `5s`, `1.5s`, `.5s` and `5.s`, never `.s`.
        if whole == 0 && fraction <= 1 {
            return None;
        }
        let number: f64 = rest[..whole + fraction].parse().ok()?;
        rest = &rest[whole + fraction..];
        let (unit, scale) = UNITS.into_iter().find(|(u, _)| rest.starts_with(u))?;
        seconds += number * scale;
        rest = &rest[unit.len()..];
    }
    Duration::try_from_secs_f64(seconds).ok()
}

/// Whole seconds in a Go duration ([`is_go_duration`]), rounded up, or `None` when `text` is
/// not one.
pub fn go_duration_seconds(text: &str) -> Option<u64> {
    go_duration(text).map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert!(is_dns_label("pg-prod-2"));
        for bad in ["", "PG", "-a", "a-", "a_b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
        assert!(is_path_segment("6f1c2d3e-0000-4000-8000-000000000001"));
        assert!(is_path_segment("20261126T051245Z.1"));
        for bad in ["", ".", "..", "a/b", "{{x}}", "a b", &"a".repeat(129)] {
            assert!(!is_path_segment(bad), "{bad}");
        }
    }

    #[test]
    fn go_durations() {
        for (text, seconds) in [
            ("30s", 30.0),
            ("10m", 600.0),
            ("1h", 3600.0),
            ("1m30s", 90.0),
            ("1.5h", 5400.0),
            ("300ms", 0.3),
            ("2h45m10s", 9910.0),
            ("1us", 1e-6),
            ("1µs", 1e-6),
            (".5s", 0.5),
            ("5.s", 5.0),
        ] {
            let parsed = go_duration(text).map(|d| d.as_secs_f64());
            assert!(
                parsed.is_some_and(|p| (p - seconds).abs() < 1e-9),
                "{text}: {parsed:?}"
            );
            assert!(is_go_duration(text), "{text}");
        }
        assert_eq!(go_duration_seconds("1m30s"), Some(90));
        assert_eq!(go_duration_seconds("300ms"), Some(1), "rounded up");
        assert_eq!(go_duration_seconds("5d"), None);
        for bad in [
            "", "5", "s", "-5s", "+5s", ".s", "5 s", "5d", "5sm", "1.2.3s", "5S",
        ] {
            assert!(!is_go_duration(bad), "{bad}");
        }
    }
}
