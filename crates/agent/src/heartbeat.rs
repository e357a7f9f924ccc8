//! The heartbeat: the agent is alive, what it can reach, what it runs, and when the
//! orchestrator last polled successfully (the newest succeeded orchestrator Workflow).
//!
//! It also reads whether Argo's workflow controller runs only Workflows that reference a
//! WorkflowTemplate ([`crate::argo_config`], security review finding M6), and sends it
//! (`argoRestrictsTemplates`) with the agent's `insecure…` options (`insecureOptions`), so
//! the control plane's operators see a weakened agent; the log says it too: a warning when
//! the restriction is not enforced (the orchestrator refuses to tick then), and loudly when
//! the insecure override is on.

use std::time::SystemTime;

use control_plane::api::{Heartbeat, rfc3339};
use control_plane::{ControlPlaneClient, ControlPlaneError};
use serde_json::Value;

use crate::argo_config::{self, ControllerConfigMap, Restrictions};
use crate::kubernetes::Namespace;

/// Label selector of the agent's running connector Workflows.
pub const RUNNING: &str =
    "app.kubernetes.io/managed-by=outpost,workflows.argoproj.io/phase=Running";
/// Label selector of the orchestrator's succeeded Workflows.
pub const SUCCEEDED_POLLS: &str =
    "app.kubernetes.io/component=orchestrator,workflows.argoproj.io/phase=Succeeded";

/// Who the agent is, and what it checks besides.
#[derive(Clone, Debug)]
pub struct HeartbeatConfig {
    /// The agent's id at the control plane.
    pub agent_id: String,
    /// The ConfigMap of Argo's workflow controller.
    pub argo_config_map: ControllerConfigMap,
    /// The orchestrator runs even without Argo's restriction (insecure): warned about.
    pub insecure_allow_unrestricted_templates: bool,
    /// The agent's other `insecure…` options (`insecureUnsignedJobs`, `insecurePlainHttp`),
    /// reported in every heartbeat.
    pub insecure_options: Vec<String>,
}

impl HeartbeatConfig {
    /// `agent_id`, Argo's ConfigMap where Argo's install manifests put it, no override.
    pub fn new(agent_id: &str) -> Self {
        Self {
            agent_id: agent_id.to_owned(),
            argo_config_map: ControllerConfigMap::default(),
            insecure_allow_unrestricted_templates: false,
            insecure_options: Vec::new(),
        }
    }
}

/// One heartbeat's observations: what is sent, and what the heartbeat has no field for.
#[derive(Clone, Debug)]
pub struct Observation {
    /// What the control plane receives.
    pub heartbeat: Heartbeat,
    /// Whether Argo runs only Workflows that reference a WorkflowTemplate, or why that is
    /// unknown (the API server did not answer). Logged, and sent as `argoRestrictsTemplates`.
    pub argo_restrictions: Result<Restrictions, String>,
    /// What was logged as a warning.
    pub warnings: Vec<String>,
}

impl Observation {
    /// `true`, `false`, or `unknown`, for the log.
    pub fn argo_restricts_templates(&self) -> &'static str {
        match &self.argo_restrictions {
            Ok(r) if r.is_enforced() => "true",
            Ok(r)
                if matches!(
                    r.template_referencing,
                    argo_config::TemplateReferencing::NotEnforced(_)
                ) =>
            {
                "false"
            }
            _ => "unknown",
        }
    }
}

/// What the agent sees of its cluster now; warnings are logged as they are found.
pub async fn observe(namespace: &Namespace, config: &HeartbeatConfig) -> Observation {
    let mut heartbeat = observe_heartbeat(namespace, &config.agent_id).await;
    let argo_restrictions = argo_config::read(namespace.client(), &config.argo_config_map)
        .await
        .map_err(|e| format!("reading Argo's ConfigMap {}: {e}", config.argo_config_map));
    // The control plane's operators see what weakens this agent, not only its own log.
    heartbeat.insecure_options = config.insecure_options.clone();
    if config.insecure_allow_unrestricted_templates {
        heartbeat
            .insecure_options
            .push("insecureAllowUnrestrictedTemplates".to_owned());
    }
    let mut warnings = Vec::new();
    if config.insecure_allow_unrestricted_templates {
        warnings.push(match &argo_restrictions {
            Ok(restrictions) => restrictions.insecure_warning(),
            Err(e) => format!("{}. Now: {e}", argo_config::INSECURE),
        });
    } else {
        match &argo_restrictions {
            Ok(restrictions) if restrictions.is_enforced() => {
                tracing::info!("{}", restrictions.finding());
            }
            Ok(restrictions) => warnings.push(format!(
                "{}; the orchestrator refuses to run until it is fixed",
                restrictions.finding()
            )),
            Err(e) => warnings.push(format!(
                "whether Argo's workflow controller runs Workflows with inline templates is unknown: {e}"
            )),
        }
    }
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    let mut observation = Observation {
        heartbeat,
        argo_restrictions,
        warnings,
    };
    // One reading of the finding, for the log and for the control plane alike.
    observation.heartbeat.argo_restricts_templates = match observation.argo_restricts_templates() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    observation
}

/// The heartbeat's own fields.
async fn observe_heartbeat(namespace: &Namespace, agent_id: &str) -> Heartbeat {
    let kubernetes_reachable = namespace.client().apiserver_version().await.is_ok();
    let running = namespace.workflows_labelled(RUNNING).await;
    let argo_reachable = running.is_ok();
    let running_workflows = running
        .ok()
        .map(|list| u32::try_from(list.len()).unwrap_or(u32::MAX));
    let last_successful_poll = namespace
        .workflows_labelled(SUCCEEDED_POLLS)
        .await
        .ok()
        .and_then(|list| {
            list.iter()
                .filter_map(|w| w.pointer("/status/finishedAt").and_then(Value::as_str))
                .max()
                .map(str::to_owned)
        });
    Heartbeat {
        agent_id: agent_id.to_owned(),
        version: crate::version(),
        kubernetes_reachable,
        argo_reachable,
        running_workflows,
        last_successful_poll,
        sent_at: rfc3339(SystemTime::now()),
        argo_restricts_templates: None,
        insecure_options: Vec::new(),
    }
}

/// Observes and sends one heartbeat; answers what was observed.
pub async fn send(
    control_plane: &ControlPlaneClient,
    namespace: &Namespace,
    config: &HeartbeatConfig,
) -> Result<Observation, ControlPlaneError> {
    let observation = observe(namespace, config).await;
    control_plane.heartbeat(&observation.heartbeat).await?;
    Ok(observation)
}

/// The `insecure…` options an agent reports in its heartbeats, besides
/// `insecureAllowUnrestrictedTemplates` (which [`send`] adds itself): admitting unsigned
/// jobs, and reaching the control plane over plain http.
pub fn insecure_options(unsigned_jobs: bool, plain_http: bool) -> Vec<String> {
    [
        (unsigned_jobs, "insecureUnsignedJobs"),
        (plain_http, "insecurePlainHttp"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| name.to_owned())
    .collect()
}
