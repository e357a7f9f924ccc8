//! The shapes of run identifiers, shared by everything that accepts them from outside
//! (job admission, `outpost upload`): they become path segments, label values and, for a
//! connection, part of a Secret's name. Also the shape of an ingest allow-list entry, shared
//! by the compiler (which checks the agent option) and `outpost upload` (which applies it).

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
}
