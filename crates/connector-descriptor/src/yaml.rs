//! Reading YAML into typed values, with every problem reported as a [`Diagnostic`] naming the
//! file, line, column and field.

use serde::de::DeserializeOwned;
use serde_saphyr::{Error as YamlError, Location};

use crate::Diagnostic;

/// Deserialises `text` as one YAML document. On failure, the diagnostic names the field path
/// (`parameters[2].type`) and, for an unknown field or value, the closest known one.
pub fn from_str<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, Box<Diagnostic>> {
    // Always parsed with field-path tracking, although only a failed parse needs the path and
    // tracking costs a third of a parse (microseconds for a descriptor): a fast untracked
    // parse beside it would compile every type's deserializer a second time, for each
    // descriptor, overlay and option type, 1.4 MiB of the binary.
    let mut failed_at = None;
    serde_saphyr::with_deserializer_from_str(text, |deserializer| {
        let mut track = serde_path_to_error::Track::new();
        let tracked = serde_path_to_error::Deserializer::new(deserializer, &mut track);
        T::deserialize(tracked).inspect_err(|_| failed_at = Some(track.path()))
    })
    .map_err(|error| {
        let path = failed_at
            .map(|p| field_path(&p.to_string()))
            .unwrap_or_default();
        Box::new(diagnostic(file, &path, &error))
    })
}

/// `serde_path_to_error` writes the root as `.` and the inside of a located value as
/// `.value`; neither is part of the field's name.
fn field_path(raw: &str) -> String {
    let trimmed = raw.trim_start_matches('.');
    let mut path = trimmed.replace(".value.", ".");
    while let Some(stripped) = path.strip_suffix(".value") {
        path = stripped.to_owned();
    }
    if path == "value" { String::new() } else { path }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn diagnostic(file: &str, path: &str, error: &YamlError) -> Diagnostic {
    let error = error.without_snippet();
    let location = error.location().unwrap_or(Location::UNKNOWN);
    match error {
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => {
            let diagnostic = Diagnostic::new(
                file,
                location,
                parent_of(path, field),
                format!("unknown field `{field}`"),
            );
            with_suggestion(diagnostic, field, expected)
        }
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => {
            let diagnostic =
                Diagnostic::new(file, location, path, format!("unknown value `{variant}`"));
            with_suggestion(diagnostic, variant, expected)
        }
        YamlError::SerdeMissingField { field, .. } => Diagnostic::new(
            file,
            location,
            join(path, field),
            format!("missing required field `{field}`"),
        ),
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | YamlError::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => Diagnostic::new(
            file,
            location,
            path,
            format!("expected {expected}, found {unexpected}"),
        ),
        YamlError::InvalidScalar { ty, .. } => {
            let wanted = match *ty {
                "bool" => "`true` or `false`",
                t if t.starts_with('i') || t.starts_with('u') => "a whole number",
                t if t.starts_with('f') => "a number",
                _ => "a value of another type",
            };
            Diagnostic::new(file, location, path, format!("expected {wanted}"))
        }
        YamlError::DuplicateMappingKey { .. } => {
            Diagnostic::new(file, location, path, "duplicate key in mapping")
        }
        other => Diagnostic::new(file, location, path, plain_message(other)),
    }
}

/// The tracked path of an unknown field already ends in that field's name.
fn parent_of(path: &str, field: &str) -> String {
    let trimmed = path.strip_suffix(field).unwrap_or(path);
    let parent = trimmed.trim_end_matches('.');
    join(parent, field)
}

fn with_suggestion(diagnostic: Diagnostic, given: &str, expected: &[&str]) -> Diagnostic {
    match closest(given, expected) {
        Some(best) => diagnostic.with_help(format!("did you mean `{best}`?")),
        None if expected.is_empty() => diagnostic,
        None => diagnostic.with_help(format!("expected one of: {}", expected.join(", "))),
    }
}

/// The known name most similar to `given`, if any is similar enough to be a likely typo.
pub fn closest<'a>(given: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| {
            (
                strsim::jaro_winkler(&given.to_lowercase(), &k.to_lowercase()),
                *k,
            )
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// The error's message without the `at line …` suffix (the diagnostic prints its own).
fn plain_message(error: &YamlError) -> String {
    let text = error.to_string();
    match text.find(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}
