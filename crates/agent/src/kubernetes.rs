//! The few Kubernetes calls the agent makes, each within its service account's Role:
//! Workflows (create, get, list), WorkflowTemplates (get), Pods (list) and their logs (get).
//! The one call outside the agent's namespace, a `get` of Argo's controller ConfigMap, is
//! [`crate::argo_config::read`].

use kube::api::{Api, ApiResource, DynamicObject, ListParams, LogParams, PostParams};
use kube::core::GroupVersionKind;
use serde_json::Value;

/// Most lines of a container's log read (its end), however long the log.
pub const LOG_TAIL_LINES: i64 = 100_000;

/// Argo's Workflow resource.
pub fn workflow_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "argoproj.io",
        "v1alpha1",
        "Workflow",
    ))
}

/// Argo's WorkflowTemplate resource.
pub fn workflow_template_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "argoproj.io",
        "v1alpha1",
        "WorkflowTemplate",
    ))
}

/// What creating a Workflow came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    /// The API server stored it.
    New,
    /// A Workflow of that name existed already (`AlreadyExists`).
    Existed,
}

/// The agent's view of one namespace.
#[derive(Clone)]
pub struct Namespace {
    client: kube::Client,
    name: String,
}

impl Namespace {
    /// `namespace` through `client`.
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Self {
            client,
            name: namespace.to_owned(),
        }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    fn workflows(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.name, &workflow_resource())
    }

    /// Creates `workflow`; `AlreadyExists` is an answer, not an error.
    pub async fn create_workflow(
        &self,
        workflow: &argo_workflows::Workflow,
    ) -> Result<Created, kube::Error> {
        let object: DynamicObject = serde_json::to_value(workflow)
            .and_then(serde_json::from_value)
            .map_err(kube::Error::SerdeError)?;
        match self
            .workflows()
            .create(&PostParams::default(), &object)
            .await
        {
            Ok(_) => Ok(Created::New),
            Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(Created::Existed),
            Err(other) => Err(other),
        }
    }

    /// The Workflow `name`, as JSON.
    pub async fn workflow(&self, name: &str) -> Result<Value, kube::Error> {
        let object = self.workflows().get(name).await?;
        serde_json::to_value(object).map_err(kube::Error::SerdeError)
    }

    /// Workflows matching `labels` (a label selector), as JSON.
    pub async fn workflows_labelled(&self, labels: &str) -> Result<Vec<Value>, kube::Error> {
        let list = self
            .workflows()
            .list(&ListParams::default().labels(labels))
            .await?;
        list.items
            .into_iter()
            .map(|o| serde_json::to_value(o).map_err(kube::Error::SerdeError))
            .collect()
    }

    /// The WorkflowTemplate `name`, or `None` when it is not installed.
    pub async fn workflow_template(&self, name: &str) -> Result<Option<Value>, kube::Error> {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            &self.name,
            &workflow_template_resource(),
        );
        match api.get_opt(name).await? {
            Some(object) => serde_json::to_value(object)
                .map(Some)
                .map_err(kube::Error::SerdeError),
            None => Ok(None),
        }
    }

    /// `(pod, container)` of every container of the pods Argo ran for `workflow`, except
    /// Argo's own `wait` and `init` containers.
    pub async fn workflow_containers(
        &self,
        workflow: &str,
    ) -> Result<Vec<(String, String)>, kube::Error> {
        let pods: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.client.clone(), &self.name);
        let list = pods
            .list(
                &ListParams::default()
                    .labels(&format!("workflows.argoproj.io/workflow={workflow}")),
            )
            .await?;
        let mut out = Vec::new();
        for pod in list.items {
            let Some(name) = pod.metadata.name else {
                continue;
            };
            for container in pod.spec.map(|s| s.containers).unwrap_or_default() {
                if !matches!(container.name.as_str(), "wait" | "init") {
                    out.push((name.clone(), container.name));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// The last `limit_bytes` of a container's log, where failures are. Kubernetes'
    /// `limitBytes` would give the first ones (security review L5), so the log is streamed
    /// and only its end kept (at most twice the limit in memory); `tailLines` bounds what is
    /// read of a huge log.
    pub async fn container_log(
        &self,
        pod: &str,
        container: &str,
        limit_bytes: usize,
    ) -> Result<String, String> {
        use futures_util::AsyncReadExt as _;
        let pods: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.client.clone(), &self.name);
        let mut stream = pods
            .log_stream(
                pod,
                &LogParams {
                    container: Some(container.to_owned()),
                    tail_lines: Some(LOG_TAIL_LINES),
                    ..LogParams::default()
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        let mut kept: Vec<u8> = Vec::new();
        let mut cut = false;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let read = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if read == 0 {
                break;
            }
            kept.extend_from_slice(&chunk[..read]);
            if kept.len() > 2 * limit_bytes {
                kept.drain(..kept.len() - limit_bytes);
                cut = true;
            }
        }
        if kept.len() > limit_bytes {
            kept.drain(..kept.len() - limit_bytes);
            cut = true;
        }
        let text = String::from_utf8_lossy(&kept);
        Ok(if cut {
            format!("(earlier output cut: only the last {limit_bytes} bytes are kept)\n{text}")
        } else {
            text.into_owned()
        })
    }
}
