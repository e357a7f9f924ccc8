//! The shapes of run identifiers, shared by everything that accepts them from outside
//! (job admission, `outpost upload`): they become path segments, label values and, for a
//! connection, part of a Secret's name.

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
