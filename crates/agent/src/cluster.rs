//! The cluster's executor for the loop of [`crate::tick`]: an admitted job becomes a
//! Workflow that only references its connector's WorkflowTemplate, named after the job and
//! run (so the API server refuses a second one), and is reported `submitted`. Bucket relay
//! is possible when the installed WorkflowTemplate offers it; a signed job's nonce is kept
//! on its Workflow (a label with its digest, an annotation with the nonce), and looked up
//! there by later ticks.

use std::collections::{BTreeMap, HashMap};

use connector_descriptor::ValidatedDescriptor;
use control_plane::ControlPlaneClient;
use control_plane::api::{JobState, StatusReport};
use orchestrator::signing::{self, JobNonce};
use orchestrator::{AdmittedJob, workflow_for, workflow_name};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::kubernetes::{Created, Namespace};
use crate::tick::{Executor, Outcome};

/// Runs jobs as Workflows in one namespace; made for one tick.
pub(crate) struct ClusterExecutor<'a> {
    namespace: &'a Namespace,
    descriptors: &'a [ValidatedDescriptor],
    /// Each connector's WorkflowTemplate, fetched once per tick.
    templates: Mutex<BTreeMap<String, Result<Option<Value>, String>>>,
    /// The nonces of the signed jobs handled in this tick, with their job and run ids, so
    /// two jobs carrying one nonce are told apart even before either Workflow exists.
    nonces: Mutex<HashMap<String, (String, String)>>,
}

impl<'a> ClusterExecutor<'a> {
    pub(crate) fn new(namespace: &'a Namespace, descriptors: &'a [ValidatedDescriptor]) -> Self {
        Self {
            namespace,
            descriptors,
            templates: Mutex::new(BTreeMap::new()),
            nonces: Mutex::new(HashMap::new()),
        }
    }

    /// Checks that the existing Workflow `name` was submitted for this job and run.
    async fn same_job(&self, name: &str, job: &AdmittedJob) -> Result<(), String> {
        let existing = self
            .namespace
            .workflow(name)
            .await
            .map_err(|e| format!("reading existing Workflow {name}: {e}"))?;
        let annotation = |key: &str| {
            existing
                .pointer(&format!("/metadata/annotations/{}", key.replace('/', "~1")))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        if annotation("outpost.dev/job-id").as_deref() == Some(job.id.as_str())
            && annotation("outpost.dev/run-id").as_deref() == Some(job.run_id.as_str())
        {
            Ok(())
        } else {
            Err(format!(
                "Workflow {name} exists but belongs to another job; refusing to count it as this one"
            ))
        }
    }
}

impl Executor for ClusterExecutor<'_> {
    const LOCAL: bool = false;

    /// Bucket relay is possible when the installed WorkflowTemplate offers it (the compiler
    /// lists `bucket-relay` only when a relay bucket is configured). Templates are fetched
    /// only for connectors the agent has descriptors for, so a job cannot make the agent
    /// look up arbitrary names.
    async fn relay_configured(&self, job: &Value) -> Result<bool, String> {
        let Some(connector) = job.get("connector").and_then(Value::as_str) else {
            return Ok(false);
        };
        if !self.descriptors.iter().any(|d| d.name() == connector) {
            return Ok(false);
        }
        let template = {
            let mut cache = self.templates.lock().await;
            if !cache.contains_key(connector) {
                let name = connector_descriptor::template_name(connector);
                let fetched = self
                    .namespace
                    .workflow_template(&name)
                    .await
                    .map_err(|e| format!("reading WorkflowTemplate {name}: {e}"));
                cache.insert(connector.to_owned(), fetched);
            }
            cache.get(connector).cloned().unwrap_or(Ok(None))?
        };
        let Some(template) = template else {
            return Err(format!(
                "WorkflowTemplate {} is not installed in namespace {}",
                connector_descriptor::template_name(connector),
                self.namespace.name()
            ));
        };
        Ok(template
            .pointer("/spec/arguments/parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| p.get("name").and_then(Value::as_str) == Some("transfer-mode"))
            .filter_map(|p| p.get("enum").and_then(Value::as_array))
            .flatten()
            .any(|mode| mode.as_str() == Some("bucket-relay")))
    }

    /// Whether `nonce` was used by another job or run: in this tick, or on a Workflow in
    /// the namespace (found by the nonce's label). It is recorded on the job's Workflow.
    async fn seen_nonce(
        &self,
        job: &AdmittedJob,
        nonce: &JobNonce,
    ) -> Result<Option<String>, String> {
        {
            let mut seen = self.nonces.lock().await;
            let ids = (job.id.clone(), job.run_id.clone());
            match seen.get(&nonce.nonce) {
                Some(other) if *other != ids => {
                    return Ok(Some(format!(
                        "replayed nonce: job `{}` run `{}` carries the same nonce in this poll; a nonce is accepted once",
                        other.0, other.1
                    )));
                }
                Some(_) => {}
                None => {
                    seen.insert(nonce.nonce.clone(), ids);
                }
            }
        }
        let existing = self
            .namespace
            .workflows_labelled(&signing::nonce_selector(nonce))
            .await
            .map_err(|e| format!("looking up Workflows by the job's nonce: {e}"))?;
        Ok(signing::replay_conflict(&existing, job, nonce))
    }

    /// Creates the job's Workflow (its nonce on it) and reports it `submitted`; a Workflow
    /// of that name that exists already must be this job's.
    async fn execute(
        &self,
        control_plane: &ControlPlaneClient,
        admitted: &AdmittedJob,
        nonce: Option<&JobNonce>,
    ) -> Outcome {
        let id = &admitted.id;
        let mut workflow = workflow_for(admitted, self.namespace.name());
        if let Some(nonce) = nonce {
            signing::mark_workflow(&mut workflow, nonce);
        }
        let name = workflow_name(admitted);
        let outcome = match self.namespace.create_workflow(&workflow).await {
            Ok(Created::New) => Outcome::Submitted,
            Ok(Created::Existed) => match self.same_job(&name, admitted).await {
                Ok(()) => Outcome::AlreadySubmitted,
                Err(problem) => return Outcome::Left(format!("job {id}: {problem}")),
            },
            Err(e) => {
                return Outcome::Left(format!("job {id}: creating Workflow {name}: {e}"));
            }
        };
        let report = StatusReport {
            run_id: admitted.run_id.clone(),
            state: JobState::Submitted,
            workflow: Some(name.clone()),
            message: None,
        };
        match control_plane.report_status(id, &report).await {
            Ok(_) => {
                tracing::info!(job = %id, workflow = %name, "submitted");
                outcome
            }
            // The Workflow exists; the next tick finds it and reports again.
            Err(e) => Outcome::Left(format!("job {id}: reporting Workflow {name}: {e}")),
        }
    }
}
