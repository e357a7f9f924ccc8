//! The Helm chart's share of a render: the same Argo objects as `workflow-templates/`, plus a
//! record of the chart values they were compiled from.
//!
//! Helm cannot run the compiler, and Argo's `{{…}}` would clash with Helm's templating, so
//! the chart (`charts/outpost`) embeds the compiler's output verbatim from
//! `files/argo/` and refuses to render when its `agent:` values differ from the ones
//! recorded here. Everything in this module is pure: the files are read and written in
//! [`crate::files`].

use serde_json::Value;

use crate::{AgentOptions, COMPILER_VERSION, CompileError, RenderedFile};

/// Folder of the chart, relative to the chart's root, holding the generated Argo objects.
pub const CHART_ARGO_DIR: &str = "files/argo";

/// Name (inside [`CHART_ARGO_DIR`]) of the record of the `agent:` values the objects were
/// compiled from. The chart compares its own `.Values.agent` with the record's `agent`.
pub const COMPILED_VALUES_FILE: &str = "compiled-values.json";

/// The key of a chart values file holding the agent options.
pub const AGENT_KEY: &str = "agent";

/// Merges `over` into `base` the way Helm merges a values file over the chart's defaults:
/// maps merge key by key, any other value replaces, and `null` deletes the key.
pub fn merge_values(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                if value.is_null() {
                    base.remove(key);
                } else if let Some(existing) = base.get_mut(key) {
                    merge_values(existing, value);
                } else {
                    base.insert(key.clone(), value.clone());
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// The `agent:` section of chart values merged in order (the chart's `values.yaml` first),
/// read as agent options. Unknown fields are errors, each named with its path under
/// `agent`.
pub fn agent_options(
    values: &[Value],
    source_name: &str,
) -> Result<(Value, AgentOptions), CompileError> {
    let mut agent = Value::Object(serde_json::Map::new());
    for file in values {
        if let Some(section) = file.get(AGENT_KEY) {
            merge_values(&mut agent, section);
        }
    }
    let options: AgentOptions =
        serde_path_to_error::deserialize(agent.clone()).map_err(|error| CompileError::Options {
            source_name: source_name.to_owned(),
            problems: vec![format!("{AGENT_KEY}.{}: {}", error.path(), error.inner())],
        })?;
    Ok((agent, options))
}

/// The chart's generated files: every rendered object (not `kustomization.yaml`, which is
/// kustomize's), byte for byte, plus [`COMPILED_VALUES_FILE`] recording `agent`.
pub fn chart_files(rendered: &[RenderedFile], agent: &Value) -> Vec<RenderedFile> {
    let mut files: Vec<RenderedFile> = rendered
        .iter()
        .filter(|f| f.name != "kustomization.yaml")
        .cloned()
        .collect();
    let record = serde_json::json!({
        "generatedBy": format!("outpost render (workflow-compiler {COMPILER_VERSION}); do not edit: change the chart's `agent:` values and run `outpost render --chart`"),
        AGENT_KEY: agent,
    });
    let mut contents =
        serde_json::to_string_pretty(&record).expect("a JSON value serialises to JSON");
    contents.push('\n');
    files.push(RenderedFile {
        name: COMPILED_VALUES_FILE.to_owned(),
        contents,
    });
    files.sort_by(|a, b| a.name.cmp(&b.name));
    files
}

/// The chart's values schema file, at the chart's root.
pub const VALUES_SCHEMA_FILE: &str = "values.schema.json";

/// Prefix of `properties.agent.description` in the values schema.
const AGENT_DESCRIPTION: &str = "COMPILE-TIME agent options (the Argo objects in files/argo were compiled from them; change them only with `outpost render --chart`). ";

/// `values.schema.json` with its agent part brought up to date: `properties.agent` becomes
/// the agent options' JSON Schema and its definitions replace those of the same name in
/// `$defs`; the chart's own values (every other property, and `$defs` named `Chart…`) are
/// kept as written. `existing` is the file's current text.
pub fn values_schema(existing: &str, source_name: &str) -> Result<String, CompileError> {
    let invalid = |problem: String| CompileError::Options {
        source_name: source_name.to_owned(),
        problems: vec![problem],
    };
    let mut schema: Value =
        serde_json::from_str(existing).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let mut options = serde_json::to_value(schemars::schema_for!(AgentOptions))
        .expect("a schema serialises to JSON");
    let options = options.as_object_mut().expect("a schema is an object");
    let definitions = options.shift_remove("$defs").unwrap_or(Value::Null);
    options.shift_remove("$schema");
    let description = options
        .shift_remove("description")
        .and_then(|d| d.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut agent = serde_json::Map::new();
    agent.insert(
        "description".to_owned(),
        Value::String(format!("{AGENT_DESCRIPTION}{description}")),
    );
    agent.extend(std::mem::take(options));
    let root = schema
        .as_object_mut()
        .ok_or_else(|| invalid("not a JSON object".to_owned()))?;
    let properties = root
        .get_mut("properties")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| invalid("no `properties`".to_owned()))?;
    properties.insert(AGENT_KEY.to_owned(), Value::Object(agent));
    let defs = root
        .entry("$defs")
        .or_insert_with(|| Value::Object(serde_json::Map::new()))
        .as_object_mut()
        .ok_or_else(|| invalid("`$defs` is not an object".to_owned()))?;
    defs.retain(|name, _| name.starts_with("Chart"));
    if let Value::Object(definitions) = definitions {
        defs.extend(definitions);
    }
    let mut text = serde_json::to_string_pretty(&schema).expect("JSON serialises");
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merging_follows_helm_maps_merge_lists_replace_null_deletes() {
        let mut base = json!({"a": {"b": 1, "c": [1, 2], "d": "x"}, "e": true});
        merge_values(
            &mut base,
            &json!({"a": {"b": 2, "c": [3], "d": null}, "f": 1}),
        );
        assert_eq!(base, json!({"a": {"b": 2, "c": [3]}, "e": true, "f": 1}));
    }

    #[test]
    fn agent_sections_merge_in_order_and_unknown_fields_are_named() {
        let chart = json!({"agent": {"namespace": "a", "schedules": {"heartbeat": "* * * * *"}}, "rbac": {}});
        let site = json!({"agent": {"namespace": "b"}});
        let (agent, options) = agent_options(&[chart, site], "values").expect("valid");
        assert_eq!(options.namespace, "b");
        assert_eq!(options.schedules.heartbeat, "* * * * *");
        assert_eq!(agent["schedules"]["heartbeat"], "* * * * *");

        let typo = json!({"agent": {"proxy": {"httpsProxyy": "http://p:3128"}}});
        let error = agent_options(&[typo], "values")
            .expect_err("typo")
            .to_string();
        assert!(error.contains("agent.proxy"), "{error}");
        assert!(error.contains("httpsProxyy"), "{error}");
    }
}
