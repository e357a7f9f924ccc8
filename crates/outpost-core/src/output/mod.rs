//! The output format's model: the records ([`record`]), `manifest.json` ([`Manifest`]) and
//! the SHA-256 hashing it records. Writing and reading the files is `metadata-extract`'s
//! (the writer) and `delivery`'s (the uploads); this is only what they agree on. The format
//! is documented in `crates/metadata-extract/output-format/README.md`, beside the JSON
//! Schemas [`json_schemas`] generates.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[macro_use]
pub mod record;
pub mod bi;

pub use crate::run::RunIdentity;
pub use bi::*;
pub use record::*;

/// Version of the output format this release writes (in `manifest.json`).
pub const FORMAT_VERSION: &str = "1.4";

/// Name of the manifest, written last everywhere: its presence means the run is complete.
pub const MANIFEST: &str = "manifest.json";

/// One output file, as listed in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    /// Path relative to the output folder, with `/` separators (`tables/part-00000.ndjson.zst`).
    pub path: String,
    /// The kind of the records inside.
    pub kind: EntityKind,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// Number of records (lines) inside.
    pub records: u64,
}

/// Something visible in the catalog that was not extracted, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// The kind of thing skipped.
    pub kind: EntityKind,
    /// Its qualified name (`sales.secret`).
    pub name: String,
    /// Why (`no USAGE privilege on schema`).
    pub reason: String,
}

/// `manifest.json`: written last; its presence means the output is complete.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Output format version ([`FORMAT_VERSION`]).
    pub format_version: String,
    /// Version of the Outpost that wrote it.
    pub outpost_version: String,
    /// Who produced it.
    #[serde(flatten)]
    pub identity: RunIdentity,
    /// When extraction started (RFC 3339, UTC).
    pub started_at: String,
    /// When the last file was closed (RFC 3339, UTC).
    pub finished_at: String,
    /// Every data file, in stream then part order.
    pub files: Vec<FileEntry>,
    /// Records per entity kind (every kind listed, zero included).
    pub totals: BTreeMap<EntityKind, u64>,
    /// What was visible but not extracted, and why.
    pub skipped: Vec<Skipped>,
    /// Why the source itself says its metadata may be incomplete (a Tableau site whose
    /// Metadata API is still being built); absent or empty when it does not. An incomplete
    /// run's absences say nothing: nothing may be inferred deleted from it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<String>,
    /// The agent's signature over this manifest (and so, through their digests, over every
    /// file it lists), when the agent holds a manifest-signing key: `outpost verify` checks
    /// it against the agent's public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<ManifestSignature>,
    /// The query audit: every statement the extractor sent to the source, once per distinct
    /// text, in the order first sent. Parameters are placeholders (`$1`, `?`): their values
    /// are never recorded. Absent for runs written before 1.3.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<AuditedStatement>,
    /// The run in catalogs' own formats, written by the extract step beside the streams
    /// (`exports/datahub.json`, `exports/openlineage.jsonl`) when asked, before this
    /// manifest: delivered, verified and signed with the run. Absent when none was asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<ExportEntry>,
}

/// A catalog's own format a run can be written in (`crates/catalog-export`): one spelling,
/// shared by the command line, the agent options and the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ExportFormat {
    /// DataHub metadata change proposals (a JSON array), for `datahub ingest`'s `file` source.
    #[serde(rename = "datahub")]
    DataHub,
    /// OpenLineage dataset events, one JSON object per line.
    #[serde(rename = "openlineage")]
    OpenLineage,
}

impl ExportFormat {
    /// Every format, in the order the command line lists them.
    pub const ALL: [ExportFormat; 2] = [ExportFormat::DataHub, ExportFormat::OpenLineage];

    /// Its one spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::DataHub => "datahub",
            Self::OpenLineage => "openlineage",
        }
    }

    /// What one object of the format is called, in the plural (`outpost export`'s summary).
    pub fn objects(self) -> &'static str {
        match self {
            Self::DataHub => "proposals",
            Self::OpenLineage => "events",
        }
    }

    /// The file an export of this format is written to (under `exports/` in a run).
    pub fn file_name(self) -> &'static str {
        match self {
            Self::DataHub => "datahub.json",
            Self::OpenLineage => "openlineage.jsonl",
        }
    }
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown format `{s}` (datahub, openlineage)"))
    }
}

/// One export of the run in a catalog's format ([`Manifest::exports`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportEntry {
    /// Path relative to the output folder (`exports/datahub.json`).
    pub path: String,
    /// The format (`datahub`, `openlineage`), as `outpost export --format` names it.
    pub format: String,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// What it holds: DataHub proposals, or OpenLineage events.
    pub objects: u64,
}

/// One statement of the query audit ([`Manifest::queries`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditedStatement {
    /// The statement as sent (SQL; for Tableau, the Metadata API's GraphQL query).
    pub statement: String,
    /// How many times it was sent.
    pub count: u64,
    /// Their time together, from sending to the last row read, in milliseconds.
    pub total_ms: u64,
    /// Rows (or, for Tableau, nodes) they returned together.
    pub rows: u64,
}

/// A manifest's signature (`crate::signing`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSignature {
    /// `ed25519`.
    pub algorithm: String,
    /// The signing key's public half (base64 of its 32 bytes): which key signed, so a reader
    /// pinned to another one can say so.
    pub key: String,
    /// The signature (base64 of 64 bytes) over the manifest's canonical bytes: the manifest
    /// as JSON without `signature`, object keys sorted at every level, no whitespace.
    pub value: String,
}

/// Lowercase hex of a digest: the form [`FileEntry::sha256`] takes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// SHA-256 of `bytes`, lowercase hex, as a manifest records it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The JSON Schema of every record type and of the manifest, by file name
/// (`table.schema.json`), as pretty JSON with a trailing newline: the form committed under
/// `crates/metadata-extract/output-format/`.
pub fn json_schemas() -> Vec<(String, String)> {
    fn render<T: JsonSchema>() -> String {
        let mut text =
            serde_json::to_string_pretty(&schemars::schema_for!(T)).expect("a schema is JSON");
        text.push('\n');
        text
    }
    vec![
        ("database.schema.json".to_owned(), render::<Database>()),
        ("schema.schema.json".to_owned(), render::<Schema>()),
        ("table.schema.json".to_owned(), render::<Table>()),
        ("column.schema.json".to_owned(), render::<Column>()),
        ("constraint.schema.json".to_owned(), render::<Constraint>()),
        ("index.schema.json".to_owned(), render::<Index>()),
        (
            "view-definition.schema.json".to_owned(),
            render::<ViewDefinition>(),
        ),
        ("lineage.schema.json".to_owned(), render::<Lineage>()),
        ("tag.schema.json".to_owned(), render::<TagAssignment>()),
        (
            "policy.schema.json".to_owned(),
            render::<PolicyAssignment>(),
        ),
        ("site.schema.json".to_owned(), render::<Site>()),
        ("project.schema.json".to_owned(), render::<Project>()),
        ("workbook.schema.json".to_owned(), render::<Workbook>()),
        ("sheet.schema.json".to_owned(), render::<Sheet>()),
        ("dashboard.schema.json".to_owned(), render::<Dashboard>()),
        ("datasource.schema.json".to_owned(), render::<Datasource>()),
        ("field.schema.json".to_owned(), render::<Field>()),
        ("custom-sql.schema.json".to_owned(), render::<CustomSql>()),
        ("bi-lineage.schema.json".to_owned(), render::<BiLineage>()),
        ("manifest.schema.json".to_owned(), render::<Manifest>()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_lowercase_hex() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
