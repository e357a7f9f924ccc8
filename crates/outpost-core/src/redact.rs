//! Redaction of everything Outpost ships or prints (logs, status messages, error texts):
//! known secret values, and the shapes secrets take in text — URL query strings (pre-signed
//! URLs, SAS tokens), `password=…`-style assignments, bearer tokens, cloud access keys, PEM
//! private keys and user info in URLs. Applied on the way out, whatever the source of the
//! text. Schemes and secret names match in any case: `HTTPS://…?X-Amz-Signature=…` and
//! `PASSWORD=…` are as live as lower case.

use std::sync::LazyLock;

use regex::Regex;

/// What replaces a secret.
pub const MASK: &str = "[REDACTED]";

/// What replaces a URL's query string.
pub const QUERY_MASK: &str = "?<redacted>";

static PATTERNS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // PEM private keys, whole.
        (
            r"(?i)-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
            MASK,
        ),
        // A key right after `/` or `\` is a file's name (`/etc/outpost/tokens: line 2: …`),
        // not an assignment, so the three assignment shapes skip it.
        // `password="…"`, `"token": "…"`: a quoted value, whole, to its closing quote (spaces,
        // `;`, `,` and `&` included; escaped quotes too).
        (
            r#"(?i)((?:^|[^/\\])(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret|sig|signature|credential)s?["']?\s*[:=]\s*)"(?:[^"\\]|\\.)*""#,
            "${1}\"[REDACTED]\"",
        ),
        (
            r#"(?i)((?:^|[^/\\])(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret|sig|signature|credential)s?["']?\s*[:=]\s*)'(?:[^'\\]|\\.)*'"#,
            "${1}'[REDACTED]'",
        ),
        // `password=…`, `secret: …` unquoted: where such a value ends cannot be known (a
        // password may hold spaces, `;`, `,`, `&`), so the rest of the line goes.
        (
            r#"(?i)((?:^|[^/\\])(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret|sig|signature|credential)s?["']?\s*[:=][ \t]*)[^\s"'][^\r\n]*"#,
            "${1}[REDACTED]",
        ),
        // `Authorization: Bearer …`, `Basic …`.
        (r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}", "${1} [REDACTED]"),
        // user:password@ in URLs.
        (r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@", "${1}[REDACTED]@"),
        // AWS access key ids: upper case by definition, so a lower-case word is left alone.
        (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", MASK),
    ]
    .into_iter()
    .filter_map(|(pattern, replacement)| Regex::new(pattern).ok().map(|r| (r, replacement)))
    .collect()
});

/// `text` with every known secret value and every secret-shaped token masked, and every
/// URL's query string removed ([`redact_urls`]). Values shorter than 4 characters are not
/// masked by value (they would mask ordinary words).
pub fn redact(text: &str, known_secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in known_secrets {
        let secret = secret.trim();
        if secret.len() >= 4 {
            out = out.replace(secret, MASK);
        }
    }
    out = redact_urls(&out);
    for (pattern, replacement) in PATTERNS.iter() {
        out = pattern.replace_all(&out, *replacement).into_owned();
    }
    out
}

/// Removes the query string of every `http(s)://` URL in `text` (any case): a SAS token or a
/// pre-signed URL's signature is a credential, and stores' error messages quote request URLs.
pub fn redact_urls(text: &str) -> String {
    // ASCII lowercasing keeps byte offsets, so positions found in the copy hold in `text`.
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find("http") {
        let start = at + found;
        let tail = &lower[start..];
        if !(tail.starts_with("http://") || tail.starts_with("https://")) {
            out.push_str(&text[at..start + 4]);
            at = start + 4;
            continue;
        }
        out.push_str(&text[at..start]);
        let from = &text[start..];
        let end = from
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')'))
            .unwrap_or(from.len());
        let url = &from[..end];
        match url.find('?') {
            Some(q) => {
                out.push_str(&url[..q]);
                out.push_str(QUERY_MASK);
            }
            None => out.push_str(url),
        }
        at = start + end;
    }
    out.push_str(&text[at..]);
    out
}

/// An error and its causes as one line (`cannot reach db:5432: connection refused`), a
/// cause its parent already quotes not repeated; redacted, since causes quote URLs and
/// drivers' words. The one way every entrypoint shows an error.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    redact(&text, &[])
}

/// `scheme://host[:port]/path` of a URL, never its query (a signature) or user info. The
/// parser has already lower-cased the scheme and host.
pub fn redact_url(url: &url::Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or("?"));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    shown
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

    #[test]
    fn a_file_named_like_a_secret_is_not_an_assignment() {
        let text = "/etc/outpost/tokens: line 2: agent `a` has no token";
        assert_eq!(redact(text, &[]), text);
        let windows = r"C:\outpost\secret: unreadable";
        assert_eq!(redact(windows, &[]), windows);
        // A dotted or prefixed key is still an assignment.
        for text in [
            "db.password=hunter2",
            "db_password: hunter2",
            "password=hunter2",
        ] {
            assert!(!redact(text, &[]).contains("hunter2"), "{text}");
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
            ("PASSWORD=Upper-Case-Name", "Upper-Case-Name"),
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
        let out = redact("POSTGRES://reader:s3cr3t@db/app", &[]);
        assert!(!out.contains("s3cr3t"), "{out}");
    }

    #[test]
    fn masks_private_keys_whole() {
        let text = "before\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\nkqhkiG9w0B\n-----END PRIVATE KEY-----\nafter";
        let out = redact(text, &[]);
        assert_eq!(out, format!("before\n{MASK}\nafter"));
    }

    #[test]
    fn query_strings_are_cut_from_quoted_urls() {
        let text = "Error performing PUT https://acct.blob.core.windows.net/c/x?sv=2022&sig=SECRET in 1s: 'http://h:1/p?X-Amz-Signature=SECRET2' then http://plain/path";
        let shown = redact_urls(text);
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(
            shown.contains("https://acct.blob.core.windows.net/c/x?<redacted> in 1s"),
            "{shown}"
        );
        assert!(shown.contains("http://plain/path"), "{shown}");
        assert_eq!(redact_urls("no urls, just httpd"), "no urls, just httpd");
        assert_eq!(
            redact_urls("é HtTp://h/p?s=1 ü"),
            "é HtTp://h/p?<redacted> ü"
        );
    }

    #[test]
    fn redaction_drops_the_signature() {
        let url = url::Url::parse(
            "HTTPS://user:pw@Bucket.S3.amazonaws.com:8443/a/b.zst?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA",
        )
        .expect("valid");
        let shown = redact_url(&url);
        assert_eq!(shown, "https://bucket.s3.amazonaws.com:8443/a/b.zst");
    }
}
