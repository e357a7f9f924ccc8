//! A fake Kubernetes API server (nothing real can run here): it speaks the real protocol for
//! the calls the agent makes — list/create/get Workflows, get WorkflowTemplates, list Pods and
//! read their logs, get a ConfigMap of any namespace (Argo's controller configuration),
//! `/version` — with `Status` objects for errors (`AlreadyExists` 409, `NotFound` 404,
//! `Forbidden` 403 for a ConfigMap RBAC would not let the agent read), and can inject
//! failures. Two ways in: as a tower service for an in-process
//! `kube::Client` (the way kube-rs tests its client), or over HTTP on loopback with a
//! kubeconfig, for the `outpost` binary's processes ([`FakeKube::serve_http`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use kube::client::Body;
use serde_json::{Value, json};

const WORKFLOWS: &str = "/apis/argoproj.io/v1alpha1/namespaces/";

/// What the fake has seen, for tests to assert on.
#[derive(Default)]
pub struct Counters {
    /// Workflows created.
    pub creates: AtomicU64,
    /// Creates answered `AlreadyExists`.
    pub already_exists: AtomicU64,
    /// Failures injected (`failure_rate`).
    pub injected_failures: AtomicU64,
    /// Every request.
    pub requests: AtomicU64,
}

#[derive(Default)]
struct State {
    workflows: BTreeMap<String, Value>,
    templates: BTreeMap<String, Value>,
    /// Pod name → (workflow, container → log).
    pods: BTreeMap<String, (String, BTreeMap<String, String>)>,
    /// (namespace, name) → key → value. Unlike Workflows, kept per namespace: Argo's
    /// controller configuration lives in the controller's.
    config_maps: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// ConfigMaps answered `Forbidden`, as RBAC answers a ConfigMap no Role grants.
    forbidden_config_maps: std::collections::BTreeSet<(String, String)>,
}

/// [`FakeKube::serve_http`]'s server: stops when dropped.
pub struct HttpServer {
    /// Where it listens.
    pub address: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The fake API server; clone freely.
#[derive(Clone, Default)]
pub struct FakeKube {
    state: Arc<Mutex<State>>,
    /// What it has seen.
    pub counters: Arc<Counters>,
    /// Probability (0–1) that a request fails with 503, before or after it takes effect.
    pub failure_rate: f64,
    /// When set, every request fails (the API server is down).
    pub down: bool,
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response<Vec<u8>> {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16()
    });
    json_response(code, &body)
}

fn ok(value: &Value) -> Response<Vec<u8>> {
    json_response(StatusCode::OK, value)
}

fn json_response(code: StatusCode, value: &Value) -> Response<Vec<u8>> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(value).expect("json"))
        .expect("response")
}

fn matches_selector(object: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (key, value) = term.split_once('=').unwrap_or((term, ""));
        object
            .pointer(&format!("/metadata/labels/{}", key.replace('/', "~1")))
            .and_then(Value::as_str)
            == Some(value)
    })
}

/// `metadata.name` of a Kubernetes object.
fn name_of(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_owned()
}

/// Borrowed pairs (ConfigMap keys, container logs) as an owned map.
fn owned_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl FakeKube {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("lock")
    }

    /// An injected failure's answer, counted.
    fn injected(&self, code: StatusCode, reason: &str, message: &str) -> Response<Vec<u8>> {
        self.counters
            .injected_failures
            .fetch_add(1, Ordering::Relaxed);
        status(code, reason, message)
    }

    /// Installs a WorkflowTemplate (as compiled into workflow-templates/).
    pub fn install_template(&self, template: Value) {
        self.state().templates.insert(name_of(&template), template);
    }

    /// Stores a ConfigMap (replacing one of that namespace and name) with these keys.
    pub fn put_config_map(&self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        self.state()
            .config_maps
            .insert((namespace.to_owned(), name.to_owned()), owned_map(data));
    }

    /// Answers `Forbidden` for this ConfigMap, whether it exists or not (no Role grants it).
    pub fn forbid_config_map(&self, namespace: &str, name: &str) {
        self.state()
            .forbidden_config_maps
            .insert((namespace.to_owned(), name.to_owned()));
    }

    /// Stores a Workflow as if created earlier.
    pub fn seed_workflow(&self, workflow: Value) {
        self.state().workflows.insert(name_of(&workflow), workflow);
    }

    /// A pod Argo ran for `workflow`, with its containers' logs.
    pub fn add_pod(&self, workflow: &str, pod: &str, logs: &[(&str, &str)]) {
        self.state()
            .pods
            .insert(pod.to_owned(), (workflow.to_owned(), owned_map(logs)));
    }

    /// Every stored Workflow.
    pub fn workflows(&self) -> Vec<Value> {
        self.state().workflows.values().cloned().collect()
    }

    /// Sets a stored Workflow's status (phase, message, nodes) and phase label, as Argo's
    /// controller keeps them while it runs the Workflow.
    pub fn set_status(&self, name: &str, status: Value) {
        let mut state = self.state();
        if let Some(w) = state.workflows.get_mut(name) {
            if let Some(phase) = status.get("phase").and_then(Value::as_str) {
                w["metadata"]["labels"]["workflows.argoproj.io/phase"] = json!(phase);
            }
            w["status"] = status;
        }
    }

    /// Sets a stored Workflow's phase label and status, as Argo's controller would.
    pub fn finish(&self, name: &str, phase: &str) {
        let mut state = self.state();
        if let Some(w) = state.workflows.get_mut(name) {
            w["metadata"]["labels"]["workflows.argoproj.io/phase"] = json!(phase);
            w["status"] = json!({ "phase": phase, "finishedAt": "2026-11-26T08:00:00Z", "message": if phase == "Succeeded" { "" } else { "child failed" } });
        }
    }

    /// An in-process client whose every request this fake answers.
    pub fn client(&self, namespace: &str) -> kube::Client {
        let fake = self.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let fake = fake.clone();
            async move {
                let response = fake.answer_request(request).await;
                Ok::<_, std::convert::Infallible>(response.map(Body::from))
            }
        });
        kube::Client::new(service, namespace)
    }

    /// Serves this fake over HTTP on a free loopback port, on a thread of its own, and writes
    /// a kubeconfig for it (`KUBECONFIG`), so that processes find it as their cluster. The
    /// server stops when the returned handle is dropped.
    pub fn serve_http(
        &self,
        kubeconfig: &std::path::Path,
        namespace: &str,
    ) -> std::io::Result<HttpServer> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        std::fs::write(
            kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{address}\nusers:\n- name: fake\n  user:\n    token: fake-service-account-token\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {namespace}\ncurrent-context: fake\n"
            ),
        )?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let fake = self.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let accept = async {
                    while let Ok((stream, _)) = listener.accept().await {
                        let fake = fake.clone();
                        tokio::spawn(async move {
                            let service = hyper::service::service_fn(
                                move |request: Request<hyper::body::Incoming>| {
                                    let fake = fake.clone();
                                    async move {
                                        let response = fake.answer_request(request).await;
                                        Ok::<_, std::convert::Infallible>(response.map(|b| {
                                            http_body_util::Full::new(bytes::Bytes::from(b))
                                        }))
                                    }
                                },
                            );
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await;
                        });
                    }
                };
                tokio::select! {
                    () = accept => {}
                    _ = stopped => {}
                }
            });
        });
        Ok(HttpServer {
            address,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    fn roll(&self) -> bool {
        self.failure_rate > 0.0 && rand::random::<f64>() < self.failure_rate
    }

    /// An HTTP request, whatever its body type, answered by [`FakeKube::answer`].
    async fn answer_request<B: hyper::body::Body>(&self, request: Request<B>) -> Response<Vec<u8>> {
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let query = parts.uri.query().unwrap_or("");
        self.answer(&parts.method, parts.uri.path(), query, &body)
    }

    /// One request, as the API server would answer it (with the injected failures).
    pub fn answer(
        &self,
        method: &http::Method,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> Response<Vec<u8>> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        if self.down {
            return status(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "the API server is down",
            );
        }
        let fail_before = self.roll();
        let fail_after = !fail_before && self.roll();
        if fail_before {
            return self.injected(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "injected failure",
            );
        }
        let response = self.route(method, path, query, body);
        if fail_after {
            // The request took effect, but the answer is lost.
            return self.injected(
                StatusCode::GATEWAY_TIMEOUT,
                "Timeout",
                "injected failure after the change",
            );
        }
        response
    }

    fn route(
        &self,
        method: &http::Method,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> Response<Vec<u8>> {
        let selector: String = url_decode(
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix("labelSelector="))
                .unwrap_or(""),
        );
        if path == "/version" {
            return ok(&json!({ "major": "1", "minor": "33", "gitVersion": "v1.33.0" }));
        }
        if let Some(response) = self.config_map(method, path) {
            return response;
        }
        if path.starts_with("/api/v1/namespaces/") && path.ends_with("/pods") {
            let state = self.state();
            let items: Vec<Value> = state
                .pods
                .iter()
                .map(|(name, (workflow, logs))| {
                    let mut containers: Vec<Value> = logs.keys().map(|c| json!({ "name": c })).collect();
                    containers.push(json!({ "name": "wait" }));
                    json!({
                        "metadata": { "name": name, "labels": { "workflows.argoproj.io/workflow": workflow } },
                        "spec": { "containers": containers }
                    })
                })
                .filter(|pod| matches_selector(pod, &selector))
                .collect();
            return ok(
                &json!({ "kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items }),
            );
        }
        if path.starts_with("/api/v1/namespaces/") && path.ends_with("/log") {
            let pod = path
                .trim_end_matches("/log")
                .rsplit('/')
                .next()
                .unwrap_or("");
            let container = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("container="))
                .unwrap_or("");
            let state = self.state();
            return match state
                .pods
                .get(pod)
                .and_then(|(_, logs)| logs.get(container))
            {
                Some(log) => Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "text/plain")
                    .body(log.clone().into_bytes())
                    .expect("response"),
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("pods \"{pod}\" not found"),
                ),
            };
        }
        let Some(rest) = path.strip_prefix(WORKFLOWS) else {
            return status(StatusCode::NOT_FOUND, "NotFound", "no such path");
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let mut state = self.state();
        match (method.as_str(), parts.as_slice()) {
            ("GET", [_, "workflows"]) => {
                let items: Vec<Value> = state
                    .workflows
                    .values()
                    .filter(|w| matches_selector(w, &selector))
                    .cloned()
                    .collect();
                ok(
                    &json!({ "apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowList", "metadata": {}, "items": items }),
                )
            }
            ("POST", [_, "workflows"]) => {
                let mut workflow: Value = match serde_json::from_slice(body) {
                    Ok(w) => w,
                    Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string()),
                };
                let Some(name) = workflow
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                else {
                    return status(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Invalid",
                        "metadata.name: Required value",
                    );
                };
                if state.workflows.contains_key(&name) {
                    self.counters.already_exists.fetch_add(1, Ordering::Relaxed);
                    return status(
                        StatusCode::CONFLICT,
                        "AlreadyExists",
                        &format!("workflows.argoproj.io \"{name}\" already exists"),
                    );
                }
                workflow["metadata"]["uid"] = json!(format!("uid-{name}"));
                workflow["metadata"]["resourceVersion"] = json!("1");
                state.workflows.insert(name, workflow.clone());
                self.counters.creates.fetch_add(1, Ordering::Relaxed);
                Response::builder()
                    .status(StatusCode::CREATED)
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&workflow).expect("json"))
                    .expect("response")
            }
            ("GET", [_, "workflows", name]) => match state.workflows.get(*name) {
                Some(w) => ok(w),
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("workflows.argoproj.io \"{name}\" not found"),
                ),
            },
            ("GET", [_, "workflowtemplates", name]) => match state.templates.get(*name) {
                Some(t) => ok(t),
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("workflowtemplates.argoproj.io \"{name}\" not found"),
                ),
            },
            _ => status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "not supported by the fake",
            ),
        }
    }
}

impl FakeKube {
    /// `GET /api/v1/namespaces/{namespace}/configmaps/{name}`, or `None` for another path.
    fn config_map(&self, method: &http::Method, path: &str) -> Option<Response<Vec<u8>>> {
        let rest = path.strip_prefix("/api/v1/namespaces/")?;
        let [namespace, "configmaps", name] = rest.split('/').collect::<Vec<_>>()[..] else {
            return None;
        };
        if method != http::Method::GET {
            return Some(status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "not supported by the fake",
            ));
        }
        let key = (namespace.to_owned(), name.to_owned());
        let state = self.state();
        if state.forbidden_config_maps.contains(&key) {
            // What the API server answers when no Role grants the get.
            return Some(status(
                StatusCode::FORBIDDEN,
                "Forbidden",
                &format!(
                    "configmaps \"{name}\" is forbidden: User \"system:serviceaccount:outpost:outpost-orchestrator\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"{namespace}\""
                ),
            ));
        }
        Some(match state.config_maps.get(&key) {
            Some(data) => ok(&json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": name, "namespace": namespace, "resourceVersion": "1" },
                "data": data,
            })),
            None => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("configmaps \"{name}\" not found"),
            ),
        })
    }
}

fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
