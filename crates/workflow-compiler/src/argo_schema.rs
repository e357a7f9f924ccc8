//! Argo's published JSON Schemas, used to validate objects after overlays (and, in tests,
//! every generated object).
//!
//! Argo's schema accepts unknown fields. The strict form used here adds
//! `additionalProperties: false` to every object definition that lists its properties, so a
//! field a release does not know (one Argo 4 removed, or one 3.7 lacks) is an error.

use std::sync::LazyLock;

use serde_json::Value;

/// One Argo release's schema, compiled per kind on first use.
pub struct ArgoSchema {
    /// The release (`4.1.2`).
    pub release: &'static str,
    definitions: Value,
}

impl ArgoSchema {
    /// Reads a release's `schema.json`.
    pub fn from_json(release: &'static str, text: &str) -> Result<Self, serde_json::Error> {
        let document: Value = serde_json::from_str(text)?;
        let mut definitions = document.get("definitions").cloned().unwrap_or(Value::Null);
        if let Value::Object(map) = &mut definitions {
            for definition in map.values_mut() {
                if let Value::Object(fields) = definition
                    && fields.contains_key("properties")
                    && !fields.contains_key("additionalProperties")
                {
                    fields.insert("additionalProperties".into(), Value::Bool(false));
                }
            }
        }
        Ok(Self {
            release,
            definitions,
        })
    }

    /// Every error of `object` against the strict definition of its kind, as
    /// `Argo <release>: <path>: <message>`. Objects of other kinds have none.
    pub fn errors(&self, object: &Value) -> Vec<String> {
        let Some(kind) = object.get("kind").and_then(Value::as_str) else {
            return vec![format!("Argo {}: object has no kind", self.release)];
        };
        let reference = format!("io.argoproj.workflow.v1alpha1.{kind}");
        if self.definitions.get(&reference).is_none() {
            return Vec::new();
        }
        let root = serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": format!("#/definitions/{reference}"),
            "definitions": self.definitions,
        });
        match jsonschema::draft202012::new(&root) {
            Ok(validator) => validator
                .iter_errors(object)
                .map(|e| format!("Argo {}: {}: {e}", self.release, e.instance_path()))
                .collect(),
            Err(e) => vec![format!(
                "Argo {} schema does not compile: {e}",
                self.release
            )],
        }
    }
}

/// The schemas of the Argo releases Outpost targets, vendored in `argo-schemas/` and embedded
/// deflated (`build.rs`): 1.2 MB of JSON would otherwise be 1.2 MB of the binary.
pub static EMBEDDED: LazyLock<[ArgoSchema; 2]> = LazyLock::new(|| {
    [
        embedded(
            "4.1.2",
            include_bytes!(concat!(env!("OUT_DIR"), "/schema-v4.1.2.json.deflate")),
        ),
        embedded(
            "3.7.18",
            include_bytes!(concat!(env!("OUT_DIR"), "/schema-v3.7.18.json.deflate")),
        ),
    ]
});

/// One embedded schema, inflated and read.
fn embedded(release: &'static str, deflated: &[u8]) -> ArgoSchema {
    let json = miniz_oxide::inflate::decompress_to_vec(deflated)
        .expect("vendored schema is deflated by build.rs");
    let text = std::str::from_utf8(&json).expect("vendored schema is UTF-8");
    ArgoSchema::from_json(release, text).expect("vendored schema is JSON")
}
