//! Security review finding M6: the orchestrator's account may create any Workflow, so unless
//! Argo's workflow controller runs only Workflows that reference a WorkflowTemplate
//! (`workflowRestrictions.templateReferencing: Strict` or `Secure`), a compromised
//! orchestrator could run inline pods of any image. The orchestrator reads the controller's
//! ConfigMap before every tick and refuses to run without the restriction, claiming nothing;
//! the heartbeat reports it; the insecure override runs anyway, loudly.
//!
//! Against the fake Kubernetes API (ConfigMaps per namespace, `Forbidden` on demand) and the
//! reference control plane.

mod support;

use agent::argo_config::ControllerConfigMap;
use agent::heartbeat::HeartbeatConfig;
use agent::kubernetes::Namespace;
use agent::tick::{TickConfig, TickError, tick};
use control_plane::api::JobState;
use control_plane::test_support::{TestServer, job};
use support::fake_kube::FakeKube;

/// A ConfigMap's keys and values.
type ConfigData<'a> = &'a [(&'a str, &'a str)];

const ARGO: &str = "argo";
const CONFIG_MAP: &str = "workflow-controller-configmap";

/// A fake API server with the postgres template and, when given, Argo's ConfigMap.
fn fake(argo_config: Option<&[(&str, &str)]>) -> FakeKube {
    let fake = FakeKube::default();
    fake.install_template(support::committed_template("postgres"));
    if let Some(data) = argo_config {
        fake.put_config_map(ARGO, CONFIG_MAP, data);
    }
    fake
}

async fn run_tick(
    server: &TestServer,
    fake: &FakeKube,
    config: &TickConfig,
) -> Result<agent::tick::TickSummary, TickError> {
    tick(
        &server.client(),
        &Namespace::new(fake.client("outpost"), "outpost"),
        config,
    )
    .await
}

fn config() -> TickConfig {
    TickConfig::new("tick-1", support::descriptors())
}

#[tokio::test]
async fn m6_the_orchestrator_refuses_to_run_when_argo_allows_inline_templates() {
    let server = TestServer::start(|_| {}).await;
    server.enqueue(job("job-1")).await;
    // Each: what Argo's ConfigMap holds (None: there is none), whether RBAC forbids reading
    // it, what the refusal must say.
    let cases: [(&str, Option<ConfigData>, bool, &str); 7] = [
        ("no ConfigMap", None, false, "does not exist"),
        (
            "no restriction",
            Some(&[("parallelism", "10"), ("executor", "resources: {}\n")]),
            false,
            "sets no workflowRestrictions.templateReferencing",
        ),
        (
            "an empty value",
            Some(&[("workflowRestrictions", "templateReferencing: \"\"\n")]),
            false,
            "to ``",
        ),
        (
            "a value Argo does not enforce",
            Some(&[("workflowRestrictions", "templateReferencing: strict\n")]),
            false,
            "to `strict`",
        ),
        (
            "a ConfigMap Argo refuses to load",
            Some(&[
                (
                    "config",
                    "workflowRestrictions: {templateReferencing: Strict}\n",
                ),
                ("parallelism", "10"),
            ]),
            false,
            "Argo refuses to load",
        ),
        (
            "Strict, and Argo's joined document is not YAML",
            Some(&[("workflowRestrictions", "templateReferencing: Strict")]),
            false,
            "not a configuration Argo would load",
        ),
        (
            "a ConfigMap the orchestrator may not read",
            Some(&[("workflowRestrictions", "templateReferencing: Strict\n")]),
            true,
            "may not be read",
        ),
    ];
    for (case, data, forbidden, reason) in cases {
        let fake = fake(data);
        if forbidden {
            fake.forbid_config_map(ARGO, CONFIG_MAP);
        }
        let result = run_tick(&server, &fake, &config()).await;
        let message = match &result {
            Err(e @ TickError::UnrestrictedTemplates(_)) => e.to_string(),
            other => panic!("{case}: expected a refusal, got {other:?}"),
        };
        // What the CLI prints before exiting 78: the ConfigMap, why, and how to fix it.
        for needle in [
            "argo/workflow-controller-configmap",
            reason,
            "templateReferencing: Strict",
            "charts/outpost-stack",
        ] {
            assert!(message.contains(needle), "{case}: `{needle}` in {message}");
        }
        assert!(fake.workflows().is_empty(), "{case}: nothing submitted");
        let records = server.records().await;
        assert_eq!(records.jobs[0].status.state, JobState::Pending, "{case}");
        assert_eq!(records.jobs[0].claims, 0, "{case}: no claim was made");
    }

    // An API server that fails the read (503) is unreachable, not misconfigured: exit 75.
    let mut flaky = fake(Some(&[(
        "workflowRestrictions",
        "templateReferencing: Strict\n",
    )]));
    flaky.failure_rate = 1.0;
    let result = run_tick(&server, &flaky, &config()).await;
    assert!(
        matches!(result, Err(TickError::Kubernetes { .. })),
        "{result:?}"
    );
    assert_eq!(server.records().await.jobs[0].claims, 0);
    server.stop().await;
}

#[tokio::test]
async fn m6_strict_and_secure_are_accepted() {
    let server = TestServer::start(|_| {}).await;
    let mut n = 0;
    for mode in ["Strict", "Secure"] {
        let top_level = format!("templateReferencing: {mode}\n");
        let whole =
            format!("parallelism: 10\nworkflowRestrictions:\n  templateReferencing: {mode}\n");
        // Both layouts Argo reads: one key per field, or the whole configuration in `config`.
        let layouts: [(&str, Vec<(&str, &str)>); 2] = [
            (
                "top-level key",
                vec![("workflowRestrictions", &top_level), ("parallelism", "10")],
            ),
            ("`config` key", vec![("config", &whole)]),
        ];
        for (layout, data) in layouts {
            n += 1;
            let id = format!("job-{n}");
            server.enqueue(job(&id)).await;
            let fake = fake(Some(&data));
            let summary = run_tick(&server, &fake, &config())
                .await
                .unwrap_or_else(|e| panic!("{mode}, {layout}: {e}"));
            assert_eq!(summary.submitted, 1, "{mode}, {layout}: {summary:?}");
            assert!(summary.warnings.is_empty(), "{summary:?}");
            assert_eq!(fake.workflows().len(), 1);
        }
    }

    // The controller's ConfigMap elsewhere: read where the option says, not at Argo's default.
    server.enqueue(job("job-elsewhere")).await;
    let fake = fake(None);
    fake.put_config_map(
        "argo-system",
        "argo-workflows-controller-config",
        &[(
            "config",
            "workflowRestrictions: {templateReferencing: Strict}\n",
        )],
    );
    let err = run_tick(&server, &fake, &config()).await;
    assert!(
        matches!(err, Err(TickError::UnrestrictedTemplates(_))),
        "the default location holds nothing: {err:?}"
    );
    let mut elsewhere = config();
    elsewhere.argo_config_map = "argo-system/argo-workflows-controller-config"
        .parse::<ControllerConfigMap>()
        .expect("parses");
    let summary = run_tick(&server, &fake, &elsewhere).await.expect("tick");
    assert_eq!(summary.submitted, 1, "{summary:?}");
    server.stop().await;
}

#[tokio::test]
async fn m6_the_insecure_override_runs_and_warns() {
    let server = TestServer::start(|_| {}).await;
    let mut insecure = config();
    insecure.insecure_allow_unrestricted_templates = true;
    // Not enforced, and no ConfigMap at all: the tick runs, and says so every time.
    for (n, data) in [
        Some(&[("parallelism", "10")][..]),
        None,
        Some(&[("workflowRestrictions", "templateReferencing: Strict\n")][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("job-{n}");
        server.enqueue(job(&id)).await;
        let fake = fake(data);
        let summary = run_tick(&server, &fake, &insecure).await.expect("runs");
        assert_eq!(summary.submitted, 1, "{summary:?}");
        assert_eq!(summary.warnings.len(), 1, "{summary:?}");
        let warning = &summary.warnings[0];
        assert!(
            warning.starts_with("INSECURE:")
                && warning.contains("--insecure-allow-unrestricted-templates")
                && warning.contains("argo/workflow-controller-configmap"),
            "{warning}"
        );
    }

    // The heartbeat warns too, whatever Argo says.
    let fake = fake(Some(&[("parallelism", "10")]));
    let mut heartbeat = HeartbeatConfig::new("agent-1");
    heartbeat.insecure_allow_unrestricted_templates = true;
    let observed = agent::heartbeat::send(
        &server.client(),
        &Namespace::new(fake.client("outpost"), "outpost"),
        &heartbeat,
    )
    .await
    .expect("sent");
    assert_eq!(observed.warnings.len(), 1, "{:?}", observed.warnings);
    assert!(
        observed.warnings[0].starts_with("INSECURE:"),
        "{:?}",
        observed.warnings
    );
    server.stop().await;
}

#[tokio::test]
async fn m6_the_heartbeat_reports_whether_argo_enforces_template_referencing() {
    let server = TestServer::start(|_| {}).await;
    let beat = |fake: FakeKube| {
        let client = server.client();
        async move {
            agent::heartbeat::send(
                &client,
                &Namespace::new(fake.client("outpost"), "outpost"),
                &HeartbeatConfig::new("agent-1"),
            )
            .await
            .expect("a heartbeat is sent whatever Argo's configuration")
        }
    };
    let enforced = beat(fake(Some(&[(
        "workflowRestrictions",
        "templateReferencing: Secure\n",
    )])))
    .await;
    assert_eq!(enforced.argo_restricts_templates(), "true");
    // …and the control plane is told, not only the log.
    assert_eq!(enforced.heartbeat.argo_restricts_templates, Some(true));
    assert!(enforced.warnings.is_empty(), "{:?}", enforced.warnings);

    let open = beat(fake(Some(&[("parallelism", "10")]))).await;
    assert_eq!(open.argo_restricts_templates(), "false");
    assert_eq!(open.heartbeat.argo_restricts_templates, Some(false));
    assert_eq!(open.warnings.len(), 1);
    assert!(
        open.warnings[0].contains("runs any Workflow")
            && open.warnings[0].contains("the orchestrator refuses to run"),
        "{:?}",
        open.warnings
    );

    let forbidden = fake(None);
    forbidden.forbid_config_map(ARGO, CONFIG_MAP);
    let unknown = beat(forbidden).await;
    assert_eq!(unknown.argo_restricts_templates(), "unknown");
    assert_eq!(unknown.heartbeat.argo_restricts_templates, None);
    assert_eq!(unknown.warnings.len(), 1);
    server.stop().await;
}
