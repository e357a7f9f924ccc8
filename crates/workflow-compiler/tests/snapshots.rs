//! Snapshots of the rendered YAML (the real serialiser's bytes) for every connector and for
//! every agent option, in the top-level `snapshots/` folder. Each output is validated against
//! both Argo schemas and the security baseline before it is compared.

mod support;

use std::collections::BTreeMap;

use support::{ARGO_SCHEMAS, is_argo_kind};
use workflow_compiler::options::{
    ArgoOptions, CaBundle, CaBundleSource, ConcurrencyOptions, ControlPlaneOptions, ImageOptions,
    PodGcOptions, ProxyOptions, RelayOptions, RetryOptions, Schedules, ServiceAccounts, TtlOptions,
};
use workflow_compiler::{AgentOptions, RenderedFile};

fn validated(files: Vec<RenderedFile>) -> Vec<RenderedFile> {
    for (name, object) in support::objects(&files) {
        if is_argo_kind(&object) {
            for schema in ARGO_SCHEMAS.iter() {
                let errors = schema.errors(&object);
                assert!(errors.is_empty(), "{name}:\n{}", errors.join("\n"));
            }
            let problems = workflow_compiler::hardening::check(&object);
            assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
        }
    }
    files
}

fn snapshot(case: &str, options: &AgentOptions, files_wanted: &[&str]) {
    let files = validated(support::render(options, &[]));
    support::snapshot_settings().bind(|| {
        for wanted in files_wanted {
            let file = files
                .iter()
                .find(|f| f.name == *wanted)
                .unwrap_or_else(|| panic!("{wanted} not rendered"));
            let stem = wanted.trim_end_matches(".yaml");
            insta::assert_snapshot!(format!("option-{case}-{stem}"), file.contents);
        }
    });
}

const POSTGRES: &str = "workflowtemplate-outpost-postgres.yaml";
/// The orchestrator's and heartbeat's steps; their CronWorkflows only reference these.
const ORCHESTRATOR: &str = "workflowtemplate-outpost-orchestrator.yaml";
const HEARTBEAT: &str = "workflowtemplate-outpost-heartbeat.yaml";
const ORCHESTRATOR_CRON: &str = "cronworkflow-outpost-orchestrator.yaml";
const HEARTBEAT_CRON: &str = "cronworkflow-outpost-heartbeat.yaml";
const CONCURRENCY: &str = "configmap-outpost-concurrency.yaml";

fn with(change: impl FnOnce(&mut AgentOptions)) -> AgentOptions {
    let mut options = AgentOptions::default();
    change(&mut options);
    options
}

#[test]
fn every_connector_with_default_options() {
    let files = validated(support::render(&AgentOptions::default(), &[]));
    support::snapshot_settings().bind(|| {
        for file in &files {
            insta::assert_snapshot!(
                format!("default-{}", file.name.trim_end_matches(".yaml")),
                file.contents
            );
        }
    });
}

#[test]
fn every_option_at_once() {
    let files = validated(support::render(&support::every_option(), &[]));
    support::snapshot_settings().bind(|| {
        for file in &files {
            insta::assert_snapshot!(
                format!("every-option-{}", file.name.trim_end_matches(".yaml")),
                file.contents
            );
        }
    });
}

#[test]
fn option_namespace() {
    snapshot(
        "namespace",
        &with(|o| o.namespace = "data-catalog".into()),
        &[CONCURRENCY],
    );
}

#[test]
fn option_image_registry_and_pull_secrets() {
    let options = with(|o| {
        o.images = ImageOptions {
            registry: Some("registry.example.com/mirror".into()),
            pull_secrets: vec!["regcred".into()],
            pull_policy: Some("Always".into()),
            agent_image: None,
        }
    });
    snapshot("image-registry", &options, &[POSTGRES, ORCHESTRATOR]);
}

#[test]
fn option_proxy() {
    let options = with(|o| {
        o.proxy = Some(ProxyOptions {
            http_proxy: Some("http://proxy.example.com:3128".into()),
            https_proxy: Some("http://proxy.example.com:3128".into()),
            no_proxy: vec![".example.com".into(), "10.0.0.0/8".into()],
        })
    });
    snapshot("proxy", &options, &[POSTGRES, HEARTBEAT]);
}

#[test]
fn option_ca_bundle_from_config_map() {
    let options = with(|o| {
        o.ca_bundle = Some(CaBundle {
            source: CaBundleSource::ConfigMap,
            name: "corporate-ca".into(),
            key: "ca.crt".into(),
        })
    });
    snapshot("ca-bundle-config-map", &options, &[POSTGRES]);
}

#[test]
fn option_ca_bundle_from_secret() {
    let options = with(|o| {
        o.ca_bundle = Some(CaBundle {
            source: CaBundleSource::Secret,
            name: "corporate-ca".into(),
            key: "bundle.pem".into(),
        })
    });
    snapshot("ca-bundle-secret", &options, &[ORCHESTRATOR]);
}

#[test]
fn option_scheduling() {
    let options = support::every_option();
    let scheduling = with(|o| o.scheduling = options.scheduling.clone());
    snapshot("scheduling", &scheduling, &[POSTGRES, ORCHESTRATOR]);
}

#[test]
fn option_connector_resources() {
    let options = support::every_option();
    snapshot(
        "connector-resources",
        &with(|o| o.connector_resources = options.connector_resources.clone()),
        &[POSTGRES],
    );
}

#[test]
fn option_retry() {
    let options = with(|o| {
        o.retry = Some(RetryOptions {
            limit: 5,
            backoff_duration: "1m".into(),
            backoff_factor: 3,
            backoff_cap: "30m".into(),
        })
    });
    snapshot("retry", &options, &[POSTGRES]);
}

#[test]
fn option_pod_gc_and_ttl() {
    let options = with(|o| {
        o.pod_gc = PodGcOptions {
            strategy: "OnPodCompletion".into(),
            delete_delay_duration: Some("10m".into()),
        };
        o.ttl = TtlOptions {
            seconds_after_success: Some(3600),
            seconds_after_failure: None,
        };
    });
    snapshot("pod-gc-and-ttl", &options, &[POSTGRES, HEARTBEAT]);
}

#[test]
fn option_concurrency() {
    let options = with(|o| {
        o.concurrency = ConcurrencyOptions {
            per_connector: 3,
            overrides: BTreeMap::from([("postgres".into(), 5)]),
        }
    });
    snapshot("concurrency", &options, &[CONCURRENCY]);
}

#[test]
fn option_service_accounts() {
    let options = with(|o| {
        o.service_accounts = ServiceAccounts {
            connector: "catalog-connector".into(),
            executor: "catalog-executor".into(),
            orchestrator: "catalog-orchestrator".into(),
            heartbeat: "catalog-heartbeat".into(),
            reporter: "catalog-reporter".into(),
        }
    });
    snapshot(
        "service-accounts",
        &options,
        &[POSTGRES, ORCHESTRATOR, HEARTBEAT],
    );
}

#[test]
fn option_control_plane() {
    let options = with(|o| {
        o.control_plane = ControlPlaneOptions {
            url: "https://catalog.example.com/outpost/v1".into(),
            token_secret: "catalog-token".into(),
            job_signing_key: None,
            agent_id: Some("outpost-prod-eu".into()),
            ingest_hosts: vec![
                "ingest.catalog.example.com".into(),
                "*.blob.core.windows.net".into(),
            ],
            allow_loopback_ingest: false,
            insecure_plain_http: false,
            // Shown in the orchestrator's snapshot as `--insecure-unsigned-jobs`.
            insecure_unsigned_jobs: true,
        }
    });
    snapshot(
        "control-plane",
        &options,
        &[POSTGRES, ORCHESTRATOR, HEARTBEAT],
    );
}

#[test]
fn option_argo() {
    let options = with(|o| {
        o.argo = ArgoOptions {
            controller_config_map: argo_workflows::ControllerConfigMap {
                namespace: "argo-system".into(),
                name: "argo-workflows-controller-config".into(),
            },
            // Shown in both snapshots as `--insecure-allow-unrestricted-templates`.
            insecure_allow_unrestricted_templates: true,
        }
    });
    snapshot("argo", &options, &[ORCHESTRATOR, HEARTBEAT]);
}

#[test]
fn option_relay_bucket() {
    let options = with(|o| {
        o.relay = Some(RelayOptions {
            url: "s3://metadata-relay/outpost".into(),
            credentials_secret: Some("relay-credentials".into()),
            endpoint: Some("https://minio.storage.svc:9000".into()),
            region: Some("eu-central-1".into()),
            azure_account: None,
            sse_kms_key_id: Some("alias/outpost-relay".into()),
        })
    });
    snapshot("relay", &options, &[POSTGRES]);
}

#[test]
fn option_schedules() {
    let options = with(|o| {
        o.schedules = Schedules {
            orchestrator: "*/10 * * * *".into(),
            heartbeat: "*/2 * * * *".into(),
        }
    });
    snapshot("schedules", &options, &[ORCHESTRATOR_CRON, HEARTBEAT_CRON]);
}

#[test]
fn option_labels() {
    snapshot(
        "labels",
        &with(|o| o.labels = BTreeMap::from([("team".into(), "data-platform".into())])),
        &[POSTGRES],
    );
}
