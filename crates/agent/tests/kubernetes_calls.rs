//! The orchestrator's Kubernetes calls, request by request, against a scripted fake API
//! service (kube-rs's `tower-test` style): each expected call is asserted by method, path
//! and body, and answered as the real API server would. The control plane is the real
//! reference server.

mod support;

use agent::kubernetes::Namespace;
use agent::tick::{TickConfig, TickError, TickSummary, tick};
use control_plane::api::JobState;
use control_plane::test_support::{TestServer, job};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

type ApiHandle = Handle<Request<Body>, Response<Body>>;

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(value).expect("json")))
        .expect("response")
}

/// Waits for the next request and checks its method and path (and query, when given).
async fn expect(
    handle: &mut ApiHandle,
    method: Method,
    path: &str,
    query_contains: Option<&str>,
) -> (Value, SendResponse<Response<Body>>) {
    let (request, send) = handle.next_request().await.expect("a request");
    assert_eq!(request.method(), method, "method of {}", request.uri());
    assert_eq!(request.uri().path(), path);
    if let Some(part) = query_contains {
        let query = request.uri().query().unwrap_or("");
        assert!(query.contains(part), "query `{query}` lacks `{part}`");
    }
    let bytes = request
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    (body, send)
}

const LIST: &str = "/apis/argoproj.io/v1alpha1/namespaces/outpost/workflows";
/// Argo's workflow controller ConfigMap, where Argo's install manifests put it.
const ARGO_CONFIG: &str = "/api/v1/namespaces/argo/configmaps/workflow-controller-configmap";

/// The second call of every tick, before anything is claimed: Argo's controller
/// configuration, answered with `templateReferencing: Strict` (security review finding M6).
async fn strict_argo_config(handle: &mut ApiHandle) {
    let (_, send) = expect(handle, Method::GET, ARGO_CONFIG, None).await;
    send.send_response(json_response(
        StatusCode::OK,
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "workflow-controller-configmap", "namespace": "argo"},
                "data": {"workflowRestrictions": "templateReferencing: Strict\n"}}),
    ));
}

/// The first call of every tick: the Workflows in the namespace, answered with none.
async fn no_workflows(handle: &mut ApiHandle, query_contains: Option<&str>) {
    let (_, send) = expect(handle, Method::GET, LIST, query_contains).await;
    send.send_response(json_response(StatusCode::OK, &json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowList", "metadata": {}, "items": []})));
}

/// After the Workflows and Argo's configuration: the job's WorkflowTemplate, answered with
/// the committed one, then the Workflow's creation, answered by the caller.
async fn template_then_create(handle: &mut ApiHandle) -> (Value, SendResponse<Response<Body>>) {
    let (_, send) = expect(
        handle,
        Method::GET,
        "/apis/argoproj.io/v1alpha1/namespaces/outpost/workflowtemplates/outpost-postgres",
        None,
    )
    .await;
    send.send_response(json_response(
        StatusCode::OK,
        &support::committed_template("postgres"),
    ));
    expect(handle, Method::POST, LIST, None).await
}

/// The reference control plane with `job` queued, and a tick by `claimant` against it and
/// the scripted API service, running.
async fn ticking(
    job: Value,
    claimant: &str,
) -> (
    TestServer,
    ApiHandle,
    tokio::task::JoinHandle<Result<TickSummary, TickError>>,
) {
    let server = TestServer::start(|_| {}).await;
    server.enqueue(job).await;
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let namespace = Namespace::new(kube::Client::new(service, "outpost"), "outpost");
    let client = server.client();
    let config = TickConfig::new(claimant, support::descriptors());
    let tick = tokio::spawn(async move { tick(&client, &namespace, &config).await });
    (server, handle, tick)
}

#[tokio::test]
async fn a_tick_submits_a_workflow_that_only_references_the_template() {
    let (server, mut handle, tick) = ticking(job("job-1"), "tick-a").await;

    no_workflows(&mut handle, Some("labelSelector=")).await;
    strict_argo_config(&mut handle).await;
    let (body, send) = template_then_create(&mut handle).await;
    // The body: a Workflow with a workflowTemplateRef and arguments, nothing else that runs.
    assert_eq!(body["kind"], "Workflow");
    let spec = body["spec"].as_object().expect("spec");
    let mut keys: Vec<&str> = spec.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["arguments", "workflowTemplateRef"]);
    assert_eq!(
        body["spec"]["workflowTemplateRef"],
        json!({"name": "outpost-postgres"})
    );
    let name = body["metadata"]["name"].as_str().expect("name").to_owned();
    assert!(name.starts_with("outpost-postgres-"), "{name}");
    let arguments: Vec<(String, String)> = body["spec"]["arguments"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_owned(),
                p["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("connection", "pg-prod"),
        ("job-id", "job-1"),
        ("include-schemas", "^app$"),
        // A default the template would fill in anyway is passed explicitly.
        ("exclude-tables", ""),
    ] {
        assert!(
            arguments.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} in {arguments:?}"
        );
    }
    send.send_response(json_response(StatusCode::CREATED, &body));

    let summary = tick.await.expect("join").expect("tick");
    assert_eq!(summary.submitted, 1, "{summary:?}");
    let records = server.records().await;
    assert_eq!(records.jobs[0].status.state, JobState::Submitted);
    assert_eq!(
        records.jobs[0].status.workflow.as_deref(),
        Some(name.as_str())
    );
    server.stop().await;
}

#[tokio::test]
async fn already_exists_counts_as_submitted_after_checking_whose_it_is() {
    let (server, mut handle, tick) = ticking(job("job-2"), "tick-b").await;

    no_workflows(&mut handle, None).await;
    strict_argo_config(&mut handle).await;
    let (body, send) = template_then_create(&mut handle).await;
    let name = body["metadata"]["name"].as_str().expect("name").to_owned();
    send.send_response(json_response(
        StatusCode::CONFLICT,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "AlreadyExists", "code": 409,
                "message": format!("workflows.argoproj.io \"{name}\" already exists")}),
    ));
    let (_, send) = expect(&mut handle, Method::GET, &format!("{LIST}/{name}"), None).await;
    send.send_response(json_response(StatusCode::OK, &body));

    let summary = tick.await.expect("join").expect("tick");
    assert_eq!(
        (summary.submitted, summary.already_submitted),
        (0, 1),
        "{summary:?}"
    );
    assert_eq!(
        server.records().await.jobs[0].status.state,
        JobState::Submitted
    );
    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_api_server_means_nothing_is_claimed_or_submitted() {
    let (server, mut handle, tick) = ticking(job("job-3"), "tick-c").await;
    let (_, send) = expect(&mut handle, Method::GET, LIST, None).await;
    send.send_response(json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "ServiceUnavailable", "code": 503, "message": "etcd down"}),
    ));
    let result = tick.await.expect("join");
    assert!(
        matches!(result, Err(TickError::Kubernetes { .. })),
        "{result:?}"
    );
    let records = server.records().await;
    assert_eq!(records.jobs[0].status.state, JobState::Pending);
    assert_eq!(records.jobs[0].claims, 0);
    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_control_plane_means_nothing_is_submitted() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let namespace = Namespace::new(kube::Client::new(service, "outpost"), "outpost");
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("token"), "t0ken-value\n").expect("token");
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url =
        url::Url::parse(&format!("http://{}/", listener.local_addr().expect("addr"))).expect("url");
    drop(listener);
    let mut config = control_plane::ClientConfig::new(url, dir.path().join("token"));
    config.attempts = 2;
    config.initial_backoff = std::time::Duration::from_millis(10);
    let client = control_plane::ControlPlaneClient::new(config).expect("client");
    let tick_config = TickConfig::new("tick-d", support::descriptors());
    let tick = tokio::spawn(async move { tick(&client, &namespace, &tick_config).await });
    no_workflows(&mut handle, None).await;
    strict_argo_config(&mut handle).await;
    let result = tick.await.expect("join");
    match result {
        Err(TickError::ControlPlane(e)) => {
            assert_eq!(e.exit_code(), outpost_core::ExitCode::Temporary, "{e}")
        }
        other => panic!("expected a control-plane failure, got {other:?}"),
    }
    // The tick ended without any further Kubernetes call (an unanswered call would have
    // held it): nothing was submitted.
    assert!(
        handle.next_request().await.is_none(),
        "a Kubernetes call after failing to poll"
    );
}

/// Review finding M6: a ConfigMap the orchestrator may not read leaves it unknown whether Argo
/// runs inline templates, so the tick stops after that call: nothing claimed, no template
/// read, nothing submitted.
#[tokio::test]
async fn m6_an_unreadable_argo_config_means_nothing_is_claimed_or_submitted() {
    let (server, mut handle, tick) = ticking(job("job-5"), "tick-e").await;
    no_workflows(&mut handle, None).await;
    let (_, send) = expect(&mut handle, Method::GET, ARGO_CONFIG, None).await;
    send.send_response(json_response(
        StatusCode::FORBIDDEN,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Forbidden", "code": 403,
                "message": "configmaps \"workflow-controller-configmap\" is forbidden: User \"system:serviceaccount:outpost:outpost-orchestrator\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"argo\""}),
    ));
    let result = tick.await.expect("join");
    match &result {
        Err(e @ TickError::UnrestrictedTemplates(_)) => {
            let message = e.to_string();
            assert!(
                message.contains("argo/workflow-controller-configmap")
                    && message.contains("may not be read"),
                "{message}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // No further Kubernetes call (an unanswered one would have held the tick).
    assert!(handle.next_request().await.is_none());
    let records = server.records().await;
    assert_eq!(records.jobs[0].status.state, JobState::Pending);
    assert_eq!(records.jobs[0].claims, 0);
    server.stop().await;
}
