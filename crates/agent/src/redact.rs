//! Redaction of everything the agent ships (logs, status messages): known secret values,
//! and the shapes secrets take in text — URL query strings (pre-signed URLs, SAS tokens),
//! `password=…`-style assignments, bearer tokens, cloud access keys, PEM private keys and
//! userinfo in URLs. Applied on the way out, whatever the source of the text.

use std::sync::LazyLock;

use regex::Regex;

/// What replaces a secret.
pub const MASK: &str = "[REDACTED]";

static PATTERNS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // PEM private keys, whole.
        (
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
            MASK,
        ),
        // `password="…"`, `"token": "…"`: a quoted value, whole, to its closing quote (spaces,
        // `;`, `,` and `&` included; escaped quotes too).
        (
            r#"(?i)((?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret|sig|signature|credential)s?["']?\s*[:=]\s*)"(?:[^"\\]|\\.)*""#,
            "${1}\"[REDACTED]\"",
        ),
        (
            r#"(?i)((?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret|sig|signature|credential)s?["']?\s*[:=]\s*)'(?:[^'\\]|\\.)*'"#,
            "${1}'[REDACTED]'",
        ),
        // `password=…`, `secret: …` unquoted: where such a value ends cannot be known (a
        // password may hold spaces, `;`, `,`, `&`), so the rest of the line goes.
        (
            r#"(?i)((?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret|sig|signature|credential)s?["']?\s*[:=][ \t]*)[^\s"'][^\r\n]*"#,
            "${1}[REDACTED]",
        ),
        // `Authorization: Bearer …`, `Basic …`.
        (r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}", "${1} [REDACTED]"),
        // user:password@ in URLs.
        (r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@", "${1}[REDACTED]@"),
        // AWS access key ids.
        (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", MASK),
    ]
    .into_iter()
    .filter_map(|(pattern, replacement)| Regex::new(pattern).ok().map(|r| (r, replacement)))
    .collect()
});

/// `text` with every known secret value and every secret-shaped token masked. Values
/// shorter than 4 characters are not masked by value (they would mask ordinary words).
pub fn redact(text: &str, known_secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in known_secrets {
        let secret = secret.trim();
        if secret.len() >= 4 {
            out = out.replace(secret, MASK);
        }
    }
    out = delivery::redact_urls(&out);
    for (pattern, replacement) in PATTERNS.iter() {
        out = pattern.replace_all(&out, *replacement).into_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_known_values_and_secret_shapes() {
        // An unquoted `password=` value masks the rest of its line (L6), so the other shapes
        // are on lines of their own.
        let text = "login as reader with password=hunter2-canary failed;\n\
            url https://bucket.s3.amazonaws.com/a?X-Amz-Signature=abc123 \
            Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload \
            postgres://reader:s3cr3t@db:5432/app key AKIAABCDEFGHIJKLMNOP \
            {\"token\": \"tok-123456\"} the canary CANARY-7f3a";
        let out = redact(text, &["CANARY-7f3a".to_owned()]);
        for secret in [
            "hunter2-canary",
            "abc123",
            "eyJhbGciOiJIUzI1NiJ9",
            "s3cr3t",
            "AKIAABCDEFGHIJKLMNOP",
            "tok-123456",
            "CANARY-7f3a",
        ] {
            assert!(!out.contains(secret), "{secret} survived: {out}");
        }
        for kept in [
            "login as reader",
            "db:5432/app",
            "https://bucket.s3.amazonaws.com/a",
        ] {
            assert!(out.contains(kept), "{kept} lost: {out}");
        }
    }

    /// Review finding L6: the `password=` mask stopped at a space, `;`, `,`, `&` or quote.
    #[test]
    fn l6_password_values_are_masked_whole_whatever_they_hold() {
        for (text, secret) in [
            ("password=two words here", "words here"),
            ("password=abc;def", ";def"),
            ("password=abc,def", ",def"),
            ("password=abc&def", "&def"),
            ("password='quoted; value, & more'", "value, & more"),
            (
                "{\"password\": \"a \\\"quoted\\\" one\", \"user\": \"x\"}",
                "quoted",
            ),
            ("conninfo host=db password=\"p a;s,s\" user=reader", "a;s,s"),
        ] {
            let out = redact(text, &[]);
            assert!(!out.contains(secret), "`{secret}` survived in {out}");
            assert!(out.contains(MASK), "{out}");
        }
        // What follows a quoted value on the line is kept.
        let out = redact("{\"password\": \"x y\", \"user\": \"reader\"}", &[]);
        assert!(out.contains("\"user\": \"reader\""), "{out}");
    }

    /// Review finding L4: URL redaction matched only lowercase `http`.
    #[test]
    fn l4_upper_case_urls_lose_their_query_strings() {
        let text = "GET HTTPS://bucket.s3.amazonaws.com/k?X-Amz-Signature=deadbeef&X-Amz-Security-Token=tok123 and Http://h/p?sig=abc";
        let out = redact(text, &[]);
        for secret in ["deadbeef", "tok123", "sig=abc"] {
            assert!(!out.contains(secret), "`{secret}` survived in {out}");
        }
        assert!(
            out.contains("HTTPS://bucket.s3.amazonaws.com/k?<redacted>"),
            "{out}"
        );
    }

    #[test]
    fn masks_private_keys_whole() {
        let text = "before\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\nkqhkiG9w0B\n-----END PRIVATE KEY-----\nafter";
        let out = redact(text, &[]);
        assert_eq!(out, format!("before\n{MASK}\nafter"));
    }
}
