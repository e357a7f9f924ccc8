//! Whether Argo's workflow controller runs only Workflows that reference a WorkflowTemplate
//! (`workflowRestrictions.templateReferencing: Strict` or `Secure`), read from the
//! controller's ConfigMap.
//!
//! The orchestrator's account may create Workflows. Without this restriction a Workflow may
//! carry templates of its own, so whoever holds that account (a compromised orchestrator pod)
//! could run a pod of any image and command; with it, Argo runs only the WorkflowTemplates
//! installed beside it (security review finding M6). So the orchestrator refuses to tick
//! without it ([`crate::tick`]) and the heartbeat reports it ([`crate::heartbeat`]).
//!
//! The ConfigMap is read as Argo reads it (`config/controller.go`, `parseConfigMap`, the same
//! in 3.7 and 4.x): either the one key `config` holding the whole configuration as YAML (a
//! `config` key beside any other makes Argo refuse the ConfigMap), or one key per top-level
//! field, which Argo joins into one YAML document (a value with a newline indented under its
//! key, any other on the key's line) before parsing it. Field names match as Go's JSON
//! decoder matches them (exactly, else ignoring ASCII case); the value is compared with
//! `Strict` and `Secure` as spelled (`config/config.go`, `MustUseReference`).
//!
//! What it cannot see is the configuration a running controller holds: a controller started
//! with another `--configmap`, or one that refused an edit of its ConfigMap (it keeps the
//! configuration it had) while the ConfigMap says `Strict`, is not detected. Neither is a
//! second controller (another `instanceID`) that would also run this namespace's Workflows.

use std::collections::BTreeMap;

use kube::api::Api;
use serde_json::Value;

/// The key under which Argo reads the whole configuration as one YAML document.
const CONFIG_KEY: &str = "config";

pub use argo_workflows::ControllerConfigMap;

/// What the controller's ConfigMap says about template referencing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateReferencing {
    /// `Strict` or `Secure`: Argo runs only Workflows that reference a WorkflowTemplate.
    Enforced(String),
    /// Argo would load the configuration, and it sets no restriction (`None`) or a value Argo
    /// does not enforce (`Some`): any Workflow runs.
    NotEnforced(Option<String>),
    /// The ConfigMap is missing, this account may not read it, or Argo would not load it.
    Unknown(String),
}

impl TemplateReferencing {
    /// Only `Strict` and `Secure` restrict Workflows to references.
    pub fn is_enforced(&self) -> bool {
        matches!(self, Self::Enforced(_))
    }
}

/// The check's answer, with the ConfigMap it read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restrictions {
    /// The ConfigMap read.
    pub config_map: ControllerConfigMap,
    /// What it says.
    pub template_referencing: TemplateReferencing,
}

impl Restrictions {
    /// Whether Argo runs only Workflows that reference a WorkflowTemplate.
    pub fn is_enforced(&self) -> bool {
        self.template_referencing.is_enforced()
    }

    /// One line: what the ConfigMap says.
    pub fn finding(&self) -> String {
        let config_map = &self.config_map;
        match &self.template_referencing {
            TemplateReferencing::Enforced(mode) => format!(
                "Argo's workflow controller runs only Workflows that reference a WorkflowTemplate (ConfigMap {config_map}: workflowRestrictions.templateReferencing: {mode})"
            ),
            TemplateReferencing::NotEnforced(None) => format!(
                "Argo's workflow controller runs any Workflow, inline templates included: ConfigMap {config_map} sets no workflowRestrictions.templateReferencing"
            ),
            TemplateReferencing::NotEnforced(Some(value)) => format!(
                "Argo's workflow controller runs any Workflow, inline templates included: ConfigMap {config_map} sets workflowRestrictions.templateReferencing to `{value}`, and Argo enforces only `Strict` and `Secure`, spelled so"
            ),
            TemplateReferencing::Unknown(reason) => format!(
                "whether Argo's workflow controller runs Workflows with inline templates is unknown: ConfigMap {config_map} {reason}"
            ),
        }
    }

    /// Why the orchestrator refuses to run, and how to fix it.
    pub fn refusal(&self) -> String {
        format!(
            "{}. The orchestrator's account may create Workflows, so without this restriction a compromised orchestrator could run pods of any image (security review finding M6); refusing to run. Fix: set `workflowRestrictions: {{templateReferencing: Strict}}` in the workflow controller's configuration (charts/outpost-stack does it: `argo-workflows.controller.workflowRestrictions.templateReferencing: Strict`); if the controller's ConfigMap is another, name it in the agent option `argo.controllerConfigMap` (--argo-controller-config-map), which the chart lets the orchestrator and heartbeat read. To run anyway, knowingly: agent option `argo.insecureAllowUnrestrictedTemplates: true` (--insecure-allow-unrestricted-templates)",
            self.finding()
        )
    }

    /// The loud line logged on every tick and heartbeat while the insecure override is on.
    pub fn insecure_warning(&self) -> String {
        format!("{INSECURE}. Now: {}", self.finding())
    }
}

/// The start of every warning while the insecure override is on.
pub const INSECURE: &str = "INSECURE: the orchestrator runs even when Argo's workflow controller runs Workflows with inline templates (--insecure-allow-unrestricted-templates), so a compromised orchestrator could run pods of any image";

/// Reads the controller's ConfigMap. An answer of the API server that settles the question
/// (the ConfigMap is missing, or this account may not read it) is
/// [`TemplateReferencing::Unknown`]; `Err` is an API server that did not answer (a transport
/// failure, 429 or 5xx), which a later attempt may cure.
pub async fn read(
    client: &kube::Client,
    config_map: &ControllerConfigMap,
) -> Result<Restrictions, kube::Error> {
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), &config_map.namespace);
    let template_referencing = match api.get(&config_map.name).await {
        Ok(object) => template_referencing(&object.data.unwrap_or_default()),
        Err(kube::Error::Api(status)) if status.is_not_found() => {
            TemplateReferencing::Unknown(format!(
                "does not exist (is Argo's controller in namespace `{}`, reading a ConfigMap named `{}`?)",
                config_map.namespace, config_map.name
            ))
        }
        Err(kube::Error::Api(status)) if status.is_forbidden() => {
            TemplateReferencing::Unknown(format!(
                "may not be read by this service account ({}; the chart grants `get` on it with a Role in namespace `{}` unless rbac.create is false)",
                status.message, config_map.namespace
            ))
        }
        Err(kube::Error::Api(status))
            if (400..500).contains(&status.code) && status.code != 429 =>
        {
            TemplateReferencing::Unknown(format!(
                "cannot be read: {} ({})",
                status.message, status.code
            ))
        }
        Err(other) => return Err(other),
    };
    Ok(Restrictions {
        config_map: config_map.clone(),
        template_referencing,
    })
}

/// What a ConfigMap's data says, read as Argo reads it.
pub fn template_referencing(data: &BTreeMap<String, String>) -> TemplateReferencing {
    let raw = match data.get(CONFIG_KEY) {
        Some(_) if data.len() != 1 => {
            return TemplateReferencing::Unknown(
                "holds a `config` key beside other keys, which Argo refuses to load (\"if you have an item in your config map named 'config', you must only have one item\")"
                    .to_owned(),
            );
        }
        Some(config) => config.clone(),
        // Argo's own joining, key by key (its order does not matter to a YAML mapping).
        None => data
            .iter()
            .map(|(name, value)| {
                if value.contains('\n') {
                    let lines: Vec<&str> = value.trim_matches('\n').split('\n').collect();
                    format!("{name}:\n  {}\n", lines.join("\n  "))
                } else {
                    format!("{name}: {value}\n")
                }
            })
            .collect(),
    };
    if raw.trim().is_empty() {
        return TemplateReferencing::NotEnforced(None);
    }
    let config: Value = match serde_saphyr::from_str(&raw) {
        Ok(config) => config,
        Err(e) => {
            return TemplateReferencing::Unknown(format!(
                "is not a configuration Argo would load (not YAML: {e})"
            ));
        }
    };
    let unloadable = |what: &str| {
        TemplateReferencing::Unknown(format!("is not a configuration Argo would load ({what})"))
    };
    let restrictions = match &config {
        Value::Null => return TemplateReferencing::NotEnforced(None),
        Value::Object(fields) => match field(fields, "workflowRestrictions") {
            Ok(Some(value)) => value,
            Ok(None) => return TemplateReferencing::NotEnforced(None),
            Err(problem) => return unloadable(&problem),
        },
        _ => return unloadable("not a mapping"),
    };
    let referencing = match restrictions {
        Value::Null => return TemplateReferencing::NotEnforced(None),
        Value::Object(fields) => match field(fields, "templateReferencing") {
            Ok(Some(value)) => value,
            Ok(None) => return TemplateReferencing::NotEnforced(None),
            Err(problem) => return unloadable(&problem),
        },
        _ => return unloadable("workflowRestrictions is not a mapping"),
    };
    match referencing {
        Value::Null => TemplateReferencing::NotEnforced(None),
        Value::String(mode) if mode == "Strict" || mode == "Secure" => {
            TemplateReferencing::Enforced(mode.clone())
        }
        Value::String(other) => TemplateReferencing::NotEnforced(Some(other.clone())),
        other => unloadable(&format!(
            "workflowRestrictions.templateReferencing is `{other}`, not a string"
        )),
    }
}

/// A field as Go's JSON decoder finds it: the key spelled exactly, else the one key equal to
/// it ignoring ASCII case. Several such keys are refused: which one Argo keeps depends on how
/// its decoder merges them, which this check does not guess.
fn field<'a>(
    fields: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<&'a Value>, String> {
    let matching: Vec<(&String, &Value)> = fields
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name))
        .collect();
    match matching.as_slice() {
        [] => Ok(None),
        [(_, value)] => Ok(Some(value)),
        _ => Err(format!(
            "`{name}` is given {} times, in different cases",
            matching.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn enforced(mode: &str) -> TemplateReferencing {
        TemplateReferencing::Enforced(mode.to_owned())
    }

    #[test]
    fn both_layouts_argo_reads() {
        // One key per field, a multi-line value (what `kubectl edit` and Argo's docs show).
        for mode in ["Strict", "Secure"] {
            assert_eq!(
                template_referencing(&data(&[
                    (
                        "workflowRestrictions",
                        &format!("templateReferencing: {mode}\n")
                    ),
                    ("executor", "resources:\n  limits:\n    memory: 64Mi\n"),
                ])),
                enforced(mode)
            );
            // One field on one line: Argo puts it on the key's line, so a flow mapping works.
            assert_eq!(
                template_referencing(&data(&[(
                    "workflowRestrictions",
                    &format!("{{templateReferencing: {mode}}}")
                )])),
                enforced(mode)
            );
            // The whole configuration under `config` (what the argo-workflows chart renders).
            assert_eq!(
                template_referencing(&data(&[(
                    "config",
                    &format!(
                        "parallelism: 10\nworkflowRestrictions:\n  templateReferencing: {mode}\n"
                    )
                )])),
                enforced(mode)
            );
        }
    }

    #[test]
    fn anything_else_is_not_enforced() {
        let not = |pairs: &[(&str, &str)]| template_referencing(&data(pairs));
        assert_eq!(not(&[]), TemplateReferencing::NotEnforced(None));
        assert_eq!(
            not(&[("parallelism", "10")]),
            TemplateReferencing::NotEnforced(None)
        );
        assert_eq!(
            not(&[("workflowRestrictions", "templateReferencing: \"\"\n")]),
            TemplateReferencing::NotEnforced(Some(String::new()))
        );
        // Argo compares the value as spelled.
        assert_eq!(
            not(&[("workflowRestrictions", "templateReferencing: strict\n")]),
            TemplateReferencing::NotEnforced(Some("strict".to_owned()))
        );
        assert_eq!(
            not(&[("workflowRestrictions", "{}")]),
            TemplateReferencing::NotEnforced(None)
        );
        assert_eq!(
            not(&[("config", "workflowRestrictions:\n  templateReferencing:\n")]),
            TemplateReferencing::NotEnforced(None)
        );
    }

    #[test]
    fn a_configuration_argo_would_not_load_is_unknown() {
        let cases: &[&[(&str, &str)]] = &[
            // `config` beside another key: Argo refuses the whole ConfigMap.
            &[
                (
                    "config",
                    "workflowRestrictions:\n  templateReferencing: Strict\n",
                ),
                ("parallelism", "10"),
            ],
            // One line without braces: Argo's joined document is `workflowRestrictions:
            // templateReferencing: Strict`, which is not YAML. Read alone, the value would
            // look enforced.
            &[("workflowRestrictions", "templateReferencing: Strict")],
            // Not a string.
            &[("workflowRestrictions", "templateReferencing: true\n")],
            &[("workflowRestrictions", "- Strict\n")],
            // The same field twice in different cases.
            &[(
                "config",
                "workflowRestrictions: {templateReferencing: Strict}\nWorkflowRestrictions: {}\n",
            )],
        ];
        for case in cases {
            assert!(
                matches!(
                    template_referencing(&data(case)),
                    TemplateReferencing::Unknown(_)
                ),
                "{case:?}: {:?}",
                template_referencing(&data(case))
            );
        }
    }

    #[test]
    fn field_names_match_as_gos_json_decoder_matches_them() {
        assert_eq!(
            template_referencing(&data(&[(
                "config",
                "WorkflowRestrictions:\n  templatereferencing: Secure\n"
            )])),
            enforced("Secure")
        );
    }

    #[test]
    fn the_config_map_is_named_namespace_slash_name() {
        let parsed: ControllerConfigMap = "argo-system/controller-config".parse().expect("parses");
        assert_eq!(parsed.namespace, "argo-system");
        assert_eq!(parsed.to_string(), "argo-system/controller-config");
        for bad in ["argo", "/name", "argo/", "a/b/c"] {
            assert!(bad.parse::<ControllerConfigMap>().is_err(), "{bad}");
        }
        assert_eq!(
            ControllerConfigMap::default().to_string(),
            "argo/workflow-controller-configmap"
        );
    }

    #[test]
    fn the_refusal_names_the_config_map_and_the_fix() {
        let restrictions = Restrictions {
            config_map: ControllerConfigMap::default(),
            template_referencing: TemplateReferencing::NotEnforced(None),
        };
        let refusal = restrictions.refusal();
        for needle in [
            "argo/workflow-controller-configmap",
            "templateReferencing: Strict",
            "charts/outpost-stack",
            "--insecure-allow-unrestricted-templates",
        ] {
            assert!(refusal.contains(needle), "{needle} in {refusal}");
        }
    }
}
