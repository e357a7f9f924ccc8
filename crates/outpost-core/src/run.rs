//! Which run something belongs to: the connector, and the connection, job and run ids. The
//! manifest records it; delivery and the exit handler turn the ids into path segments
//! (`<connection>/<job>/<run>`), so they are checked here, once, before any path is built.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{DNS_LABEL_SHAPE, PATH_SEGMENT_SHAPE, is_dns_label, is_path_segment};

/// Who produced an output, recorded in the manifest (flattened into it). A local run may have
/// no connection, job or run id; a delivered one has all three ([`RunIdentity::new`]). An
/// empty `connector` means one the holder does not know (it is not part of any path).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunIdentity {
    /// The connector (`postgres`).
    pub connector: String,
    /// The connection id, if the run belongs to one.
    pub connection: Option<String>,
    /// The control-plane job id, if any.
    pub job_id: Option<String>,
    /// The run id, if any.
    pub run_id: Option<String>,
}

/// An id that cannot be used as a path segment, or is missing where one is needed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} `{value}`: {reason}")]
pub struct RunIdError {
    /// `connection`, `job-id` or `run-id`.
    pub field: &'static str,
    /// The value given (empty when missing).
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A manifest's identity names another run than expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} is `{found}`, not `{expected}`")]
pub struct RunIdMismatch {
    /// `connector`, `connection`, `job-id` or `run-id`.
    pub field: &'static str,
    /// The expected value.
    pub expected: String,
    /// The value found.
    pub found: String,
}

impl RunIdentity {
    /// A run with every id, each checked. `connection` must be a DNS label (it also names the
    /// connection's Secret); job and run ids may use letters, digits, `.`, `_` and `-`
    /// (UUIDs, timestamps), up to 128 characters, and never `.` or `..`.
    pub fn new(
        connector: impl Into<String>,
        connection: &str,
        job_id: &str,
        run_id: &str,
    ) -> Result<Self, RunIdError> {
        let identity = Self {
            connector: connector.into(),
            connection: Some(connection.to_owned()),
            job_id: Some(job_id.to_owned()),
            run_id: Some(run_id.to_owned()),
        };
        identity.ids()?;
        Ok(identity)
    }

    /// Checks each id that is present.
    pub fn check(&self) -> Result<(), RunIdError> {
        for (field, value) in self.fields() {
            if let Some(value) = value {
                check(field, value)?;
            }
        }
        Ok(())
    }

    /// The connection, job and run ids, each present and checked.
    pub fn ids(&self) -> Result<(&str, &str, &str), RunIdError> {
        let [connection, job, run] = self.fields().map(|(field, value)| match value {
            Some(value) => check(field, value).map(|()| value),
            None => Err(RunIdError {
                field,
                value: String::new(),
                reason: "missing".to_owned(),
            }),
        });
        Ok((connection?, job?, run?))
    }

    /// `<connection>/<job>/<run>`: the run's folder below a destination's prefix.
    pub fn folder(&self) -> Result<String, RunIdError> {
        let (connection, job, run) = self.ids()?;
        Ok(format!("{connection}/{job}/{run}"))
    }

    /// Refuses `found` (a manifest's identity) when it names another run than this one. A
    /// field either side lacks (no id, an empty connector) is not compared.
    pub fn check_matches(&self, found: &RunIdentity) -> Result<(), RunIdMismatch> {
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let expected = [
            ("connector", nonempty(&self.connector)),
            ("connection", self.connection.clone()),
            ("job-id", self.job_id.clone()),
            ("run-id", self.run_id.clone()),
        ];
        let actual = [
            nonempty(&found.connector),
            found.connection.clone(),
            found.job_id.clone(),
            found.run_id.clone(),
        ];
        for ((field, expected), found) in expected.into_iter().zip(actual) {
            if let (Some(expected), Some(found)) = (expected, found)
                && expected != found
            {
                return Err(RunIdMismatch {
                    field,
                    expected,
                    found,
                });
            }
        }
        Ok(())
    }

    fn fields(&self) -> [(&'static str, Option<&str>); 3] {
        [
            ("connection", self.connection.as_deref()),
            ("job-id", self.job_id.as_deref()),
            ("run-id", self.run_id.as_deref()),
        ]
    }
}

fn check(field: &'static str, value: &str) -> Result<(), RunIdError> {
    let reason = if field == "connection" {
        (!is_dns_label(value)).then(|| format!("must be a DNS label: {DNS_LABEL_SHAPE}"))
    } else {
        (!is_path_segment(value)).then(|| format!("must be {PATH_SEGMENT_SHAPE}"))
    };
    match reason {
        Some(reason) => Err(RunIdError {
            field,
            value: value.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_checked_as_path_segments() {
        let run = RunIdentity::new("postgres", "pg-prod", "6f1c2d3e-aaaa", "20261126T040000Z.1")
            .expect("valid");
        assert_eq!(
            run.folder().as_deref(),
            Ok("pg-prod/6f1c2d3e-aaaa/20261126T040000Z.1")
        );
        for (connection, job, run) in [
            ("PG", "j", "r"),
            ("-pg", "j", "r"),
            ("pg", "..", "r"),
            ("pg", "j", "a/b"),
            ("pg", "j", ""),
            ("pg", "{{workflow.name}}", "r"),
            ("pg", "j", &"x".repeat(129)),
        ] {
            assert!(
                RunIdentity::new("c", connection, job, run).is_err(),
                "{connection}/{job}/{run} accepted"
            );
        }
        let error = RunIdentity::new("c", "PG", "j", "r").expect_err("upper case");
        assert_eq!(
            error.to_string(),
            "connection `PG`: must be a DNS label: 1-63 lowercase letters, digits or `-`, starting and ending with a letter or digit"
        );
    }

    #[test]
    fn a_local_run_has_no_folder() {
        let local = RunIdentity {
            connector: "sqlite".to_owned(),
            ..RunIdentity::default()
        };
        assert_eq!(local.check(), Ok(()));
        assert_eq!(
            local.folder().map_err(|e| e.field),
            Err("connection"),
            "a folder needs every id"
        );
    }

    #[test]
    fn a_manifest_of_another_run_is_refused() {
        let expected = RunIdentity::new("postgres", "pg", "j", "r").expect("valid");
        let mut found = expected.clone();
        assert_eq!(expected.check_matches(&found), Ok(()));
        found.job_id = None;
        assert_eq!(
            expected.check_matches(&found),
            Ok(()),
            "absent: not compared"
        );
        found.run_id = Some("other".to_owned());
        let mismatch = expected.check_matches(&found).expect_err("another run");
        assert_eq!(
            (mismatch.field, mismatch.found.as_str()),
            ("run-id", "other")
        );
        found = expected.clone();
        found.connector = "mysql".to_owned();
        assert_eq!(
            expected.check_matches(&found).map_err(|m| m.field),
            Err("connector")
        );
    }

    #[test]
    fn the_manifest_form_is_flat_camel_case() {
        let run = RunIdentity::new("postgres", "pg", "j", "r").expect("valid");
        assert_eq!(
            serde_json::to_string(&run).unwrap_or_default(),
            r#"{"connector":"postgres","connection":"pg","jobId":"j","runId":"r"}"#
        );
    }
}
