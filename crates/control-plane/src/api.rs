//! The wire types of `openapi.yaml`, shared by the client and the reference server.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use delivery::direct::UploadUrl;

/// The API version this crate speaks; every agent path starts with `/v1`.
pub const API_VERSION: &str = "v1";

/// The header naming who reports or uploads: the claimant holding the job's lease. A run's
/// own steps (an exit handler, an upload step) send none.
pub const CLAIMANT_HEADER: &str = "Outpost-Claimant";

/// The OpenAPI 3.1 document, as shipped.
pub const OPENAPI_YAML: &str = include_str!("../openapi.yaml");

/// `GET /v1/jobs`: pending jobs, raw. They are untrusted: the agent admits each against its
/// descriptors ([`orchestrator::admit`]) before anything runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobList {
    /// The jobs, oldest first.
    pub jobs: Vec<Value>,
}

/// `POST /v1/jobs/{jobId}/claim`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimRequest {
    /// Who claims: the orchestrator's pod, or a local runner.
    pub claimant: String,
    /// How long the lease lasts.
    pub lease_seconds: u32,
}

/// A granted lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lease {
    /// The job.
    pub job_id: String,
    /// Who holds it.
    pub claimant: String,
    /// When it lapses (RFC 3339).
    pub expires_at: String,
}

/// Where a job stands. Ordered: a status only moves forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    /// Queued, not claimed (or its lease lapsed).
    Pending,
    /// Leased by a claimant.
    Claimed,
    /// A Workflow (or a local run) exists for it.
    Submitted,
    /// The run started.
    Running,
    /// The run delivered its metadata.
    Succeeded,
    /// The run failed.
    Failed,
    /// The agent refused the job; the message says why.
    Rejected,
}

impl JobState {
    /// Whether nothing follows this state.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Rejected)
    }

    /// How far along the state is; a report may only raise it.
    pub fn rank(self) -> u8 {
        match self {
            Self::Pending => 0,
            Self::Claimed => 1,
            Self::Submitted => 2,
            Self::Running => 3,
            Self::Succeeded | Self::Failed | Self::Rejected => 4,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Claimed => "claimed",
            Self::Submitted => "submitted",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Claimed,
            Self::Submitted,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Rejected,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// `POST /v1/jobs/{jobId}/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusReport {
    /// The run the report is about.
    pub run_id: String,
    /// What happened.
    pub state: JobState,
    /// The Workflow's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// Why (for `failed` and `rejected`), secrets redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A job's status as the control plane holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobStatus {
    /// The job.
    pub job_id: String,
    /// Its run.
    pub run_id: String,
    /// Where it stands.
    pub state: JobState,
    /// The Workflow's name, once submitted.
    pub workflow: Option<String>,
    /// The last message.
    pub message: Option<String>,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
}

/// `POST /v1/jobs/{jobId}/runs/{runId}/upload-urls`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadUrlRequest {
    /// Run-relative paths.
    pub paths: Vec<String>,
}

/// The answer: one URL per path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadUrls {
    /// Path to URL.
    pub urls: BTreeMap<String, UploadUrl>,
}

/// `POST /v1/heartbeat`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Heartbeat {
    /// The agent's id.
    pub agent_id: String,
    /// Its version and commit.
    pub version: String,
    /// Whether the Kubernetes API answered.
    pub kubernetes_reachable: bool,
    /// Whether Argo's Workflow API answered.
    pub argo_reachable: bool,
    /// Outpost Workflows running now, when known.
    #[serde(default)]
    pub running_workflows: Option<u32>,
    /// When the orchestrator last finished a poll successfully (RFC 3339).
    #[serde(default)]
    pub last_successful_poll: Option<String>,
    /// When this heartbeat was sent (RFC 3339).
    pub sent_at: String,
    /// Whether Argo's workflow controller runs only Workflows that reference a
    /// WorkflowTemplate (`templateReferencing: Strict` or `Secure`); absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argo_restricts_templates: Option<bool>,
    /// The `insecure…` options the agent runs with, each weakening a guarantee of
    /// SECURITY.md (`insecureUnsignedJobs`, `insecurePlainHttp`,
    /// `insecureAllowUnrestrictedTemplates`); absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub insecure_options: Vec<String>,
}

/// `POST /admin/v1/jobs` (reference server only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnqueueRequest {
    /// Whose queue; default `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The job, as agents will receive it (signed on the way when the server has a key).
    pub job: Value,
}

/// One step of a job's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusEvent {
    /// The state reached.
    pub state: JobState,
    /// The Workflow's name, when reported.
    pub workflow: Option<String>,
    /// The message, when reported.
    pub message: Option<String>,
    /// When (RFC 3339).
    pub at: String,
}

/// A job as the reference server's operator sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobRecord {
    /// Whose queue.
    pub agent_id: String,
    /// The job as sent to agents.
    pub job: Value,
    /// Its status.
    pub status: JobStatus,
    /// Every state change, oldest first.
    pub history: Vec<StatusEvent>,
    /// How many leases were granted.
    pub claims: u32,
}

/// `GET /admin/v1/jobs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRecords {
    /// Every job, in queue order.
    pub jobs: Vec<JobRecord>,
}

/// `GET /admin/v1/heartbeats`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeats {
    /// Newest last.
    pub heartbeats: Vec<Heartbeat>,
}

/// Every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorAnswer {
    /// The problem.
    pub error: ErrorBody,
}

/// The problem in an error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// Stable code (`leased`, `not-pending`, `not-found`, `final` …; `openapi.yaml` lists
    /// them all).
    pub code: String,
    /// For people.
    pub message: String,
}

/// `time` as RFC 3339 with milliseconds, UTC.
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}
