//! Small pieces of Argo and Go behaviour: `{{…}}` substitution, durations, FNV-1a names,
//! Go's `strconv.Quote`, RFC 3339 timestamps.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::LazyLock;

use serde_json::Value;

use crate::EmulatorError;

static TAG: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"\{\{([^{}]*)\}\}").expect("the tag pattern is valid"));

/// Replaces every `{{tag}}` (whitespace inside the braces allowed, as Argo trims it); a tag
/// with no value is `failed to resolve {{tag}}`, Argo's message (util/template/simple_template.go).
pub(crate) fn substitute(
    text: &str,
    vars: &BTreeMap<String, String>,
) -> Result<String, EmulatorError> {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for caps in TAG.captures_iter(text) {
        let (Some(whole), Some(tag)) = (caps.get(0), caps.get(1)) else {
            continue;
        };
        let value = vars
            .get(tag.as_str().trim())
            .ok_or_else(|| EmulatorError::Unresolved(tag.as_str().to_owned()))?;
        out.push_str(&text[last..whole.start()]);
        out.push_str(value);
        last = whole.end();
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// Substitutes every string inside a JSON value (Argo substitutes the whole template).
pub(crate) fn substitute_value(
    value: &Value,
    vars: &BTreeMap<String, String>,
) -> Result<Value, EmulatorError> {
    Ok(match value {
        Value::String(s) => Value::String(substitute(s, vars)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| substitute_value(v, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), substitute_value(v, vars)?)))
                .collect::<Result<_, EmulatorError>>()?,
        ),
        other => other.clone(),
    })
}

/// FNV-1a, 32 bits: Argo's node ids and v2 pod names hash node names with it.
pub(crate) fn fnv32a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// `wfv1.ParseStringToDuration`: a bare integer is seconds, otherwise a Go duration
/// (`1h30m`, `1.5s`, `300ms`). Returns seconds.
pub(crate) fn parse_duration(text: &str) -> Result<f64, String> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds as f64);
    }
    let err = || format!("unable to parse {text} as a duration");
    let (sign, mut rest) = match text.strip_prefix('-') {
        Some(r) => (-1.0, r),
        None => (1.0, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest.is_empty() {
        return Err(err());
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let number: f64 = rest[..n].parse().map_err(|_| err())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += number * unit;
        rest = &rest[u..];
    }
    Ok(sign * total)
}

/// An `intstr` field (`limit: 3` or `limit: "3"`) as an integer.
pub(crate) fn int_or_string(value: Option<&Value>) -> Result<Option<i64>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("{n} is not an integer")),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("{s:?} is not an integer")),
        Some(other) => Err(format!("{other} is not an integer")),
    }
}

/// Go's `strconv.Quote` for the text Argo quotes (`{{workflow.failures}}`).
pub(crate) fn go_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// RFC 3339 UTC, second precision, like a Kubernetes `metav1.Time`.
pub(crate) fn rfc3339(unix_seconds: f64) -> String {
    let secs = unix_seconds.floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Random text from the standard library's per-process hash keys (no extra dependency).
pub(crate) fn random_chars(alphabet: &[u8], n: usize) -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    let mut bits = hasher.finish();
    (0..n)
        .map(|i| {
            if i % 8 == 7 {
                hasher.write_u64(bits);
                bits = hasher.finish();
            }
            let c = alphabet[(bits % alphabet.len() as u64) as usize];
            bits /= alphabet.len() as u64;
            c as char
        })
        .collect()
}

/// A random RFC 4122 version-4 style id for `{{workflow.uid}}`.
pub(crate) fn uuid() -> String {
    let h = random_chars(b"0123456789abcdef", 32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..]
    )
}

/// A string field of a JSON object, or "".
pub(crate) fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// An array field of a JSON object, or an empty slice.
pub(crate) fn list_of<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_behaviour() {
        assert_eq!(parse_duration("30s"), Ok(30.0));
        assert_eq!(parse_duration("1h30m"), Ok(5400.0));
        assert_eq!(parse_duration("45"), Ok(45.0));
        assert_eq!(parse_duration("1.5m"), Ok(90.0));
        assert!(parse_duration("ten").is_err());
        assert_eq!(fnv32a(""), 0x811c_9dc5);
        assert_eq!(fnv32a("a"), 0xe40c_292c);
        assert_eq!(go_quote(r#"[{"a":"b\c"}]"#), r#""[{\"a\":\"b\\c\"}]""#);
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000.5), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn substitution_trims_and_names_the_missing_tag() {
        let vars = BTreeMap::from([("workflow.name".to_owned(), "wf".to_owned())]);
        assert_eq!(
            substitute("{{ workflow.name }}-{{workflow.name}}", &vars)
                .ok()
                .as_deref(),
            Some("wf-wf")
        );
        let err = substitute("x {{inputs.parameters.nope}}", &vars)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("failed to resolve {{inputs.parameters.nope}}")
        );
    }
}
