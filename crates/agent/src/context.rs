//! What entrypoints work with, set up once: the async runtimes of every entrypoint
//! ([`runtime`], and [`extract_runtime`] for the extract step), and for the in-cluster ones
//! (`orchestrate`, `heartbeat`, `report`) the control plane and the agent's namespace through
//! the Kubernetes API.

use control_plane::ControlPlaneClient;
use outpost_core::ExitCode;

use crate::kubernetes::Namespace;

/// The control plane and the agent's namespace.
#[derive(Clone)]
pub struct AgentContext {
    /// The control plane.
    pub control_plane: ControlPlaneClient,
    /// The agent's namespace.
    pub namespace: Namespace,
}

/// The Kubernetes API cannot be configured (neither in-cluster nor from a kubeconfig).
#[derive(Debug, thiserror::Error)]
#[error("no Kubernetes configuration (in-cluster or kubeconfig): {0}")]
pub struct NoKubernetes(#[source] kube::Error);

impl NoKubernetes {
    /// Configuration that cannot work.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::Config
    }
}

outpost_core::exit_coded!(NoKubernetes);

impl AgentContext {
    /// Connects to the Kubernetes API (in-cluster, else the kubeconfig); `namespace` defaults
    /// to the client's own (the pod's, or the kubeconfig context's).
    pub async fn connect(
        control_plane: ControlPlaneClient,
        namespace: Option<&str>,
    ) -> Result<Self, NoKubernetes> {
        let client = kube::Client::try_default().await.map_err(NoKubernetes)?;
        let name = namespace
            .map(str::to_owned)
            .unwrap_or_else(|| client.default_namespace().to_owned());
        Ok(Self {
            control_plane,
            namespace: Namespace::new(client, &name),
        })
    }
}

/// The async runtime of every network entrypoint: two workers (uploads overlap network waits
/// with hashing on the blocking pool).
pub fn runtime() -> Result<tokio::runtime::Runtime, outpost_core::Failure> {
    built(tokio::runtime::Builder::new_multi_thread().worker_threads(2))
}

/// The extract step's runtime: one thread, as extraction streams one source and the pod's CPU
/// limit is small.
pub fn extract_runtime() -> Result<tokio::runtime::Runtime, outpost_core::Failure> {
    built(&mut tokio::runtime::Builder::new_current_thread())
}

fn built(
    builder: &mut tokio::runtime::Builder,
) -> Result<tokio::runtime::Runtime, outpost_core::Failure> {
    (builder.enable_all().build()).map_err(|e| {
        outpost_core::Failure::new(
            ExitCode::Software,
            format!("cannot start the async runtime: {e}"),
        )
    })
}
