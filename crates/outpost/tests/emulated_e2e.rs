//! The deployed chain, end to end, with every step a process of the built binary: a job is
//! queued on the reference control plane (`outpost control-plane serve`); the orchestrator
//! CronWorkflow's Workflow runs `outpost orchestrate` against a fake Kubernetes API, which
//! records the Workflow it submits; the Argo emulator (`crates/argo-emulator`) runs that
//! Workflow from the rendered WorkflowTemplate as Argo's controller would (volumes, the
//! container set, retries, deadlines, the exit handler); the exit handler reports to the
//! control plane. Sources are the real PostgreSQL and MariaDB, fakesnow behind the Snowflake
//! conformance layer, and the Tableau fake (`crates/tableau-fake`: no Tableau server can run
//! here); destinations the real s3s-fs, Azurite and fake-gcs-server that `scripts/services.sh`
//! starts.
//!
//! No Kubernetes API server or Argo controller can run here; `cluster_e2e.rs` keeps the same
//! chain for a real cluster (k3d, in its own CI workflow).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use argo_emulator::kube_api::{FakeKube, HttpServer};
use argo_emulator::{Emulator, Phase, PodEvent, WorkflowRun};
use serde_json::{Value, json};
use support::{Server, env, psql, serve};
use workflow_compiler::RenderInput;

const NAMESPACE: &str = "outpost";
/// Emulated seconds per real second: the 3600 s attempt deadline fires after 7.2 s, the 30 s
/// backoff waits 60 ms.
const TIME_SCALE: f64 = 500.0;
const RELAY_SECRET: &str = "outpost-relay-credentials";
const MANIFEST_SIGNING_SECRET: &str = "outpost-manifest-signing-key";
/// Argo's `workflowRestrictions.templateReferencing`, as charts/outpost-stack sets it.
const TEMPLATE_REFERENCING: &str = "Strict";

/// Where bucket relay delivers, in agent options.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Relay {
    S3,
    Azure,
    Gcs,
}

/// One emulated cluster: the control plane, the fake API server, the rendered objects and the
/// emulator, in a scratch folder.
struct Cluster {
    dir: support::Scratch,
    server: Arc<Mutex<Server>>,
    /// Set by a test: the control plane restarts when the next pod ends.
    restart_on_next_pod: Arc<std::sync::atomic::AtomicBool>,
    kube: FakeKube,
    _kube_http: HttpServer,
    emulator: Emulator,
    relay: Relay,
    relay_url: String,
    /// The rendered Argo objects.
    rendered: Vec<Value>,
    /// The public half of the agent's manifest-signing key (`manifestSigning`): every
    /// delivered manifest must verify against it.
    manifest_key: outpost_core::signing::VerifyingKey,
    ticks: std::cell::Cell<u32>,
}

/// The relay bucket's URL under `prefix`, and the agent options' `relay:` naming it.
fn relay_options(relay: Relay, prefix: &str) -> (String, String) {
    // The URL's scheme and bucket, the store's endpoint, and what else the store needs.
    let (scheme, bucket, endpoint, more) = match relay {
        Relay::S3 => (
            "s3",
            env("OUTPOST_TEST_S3_BUCKET"),
            env("OUTPOST_TEST_S3_ENDPOINT"),
            "  region: us-east-1\n".to_owned(),
        ),
        Relay::Azure => (
            "az",
            env("OUTPOST_TEST_AZURE_CONTAINER"),
            env("OUTPOST_TEST_AZURE_ENDPOINT"),
            format!("  azureAccount: {}\n", env("OUTPOST_TEST_AZURE_ACCOUNT")),
        ),
        Relay::Gcs => (
            "gs",
            env("OUTPOST_TEST_GCS_BUCKET"),
            env("OUTPOST_TEST_GCS_ENDPOINT"),
            String::new(),
        ),
    };
    let url = format!("{scheme}://{bucket}/{prefix}");
    let yaml = format!(
        "relay:\n  url: {url}\n  endpoint: {endpoint}\n{more}  credentialsSecret: {RELAY_SECRET}\n"
    );
    (url, yaml)
}

/// The relay bucket's static credentials, as the Secret `outpost-relay-credentials` holds them.
fn relay_credentials(relay: Relay) -> Vec<(&'static str, String)> {
    match relay {
        Relay::S3 => vec![
            ("access-key-id", env("OUTPOST_TEST_S3_ACCESS_KEY")),
            ("secret-access-key", env("OUTPOST_TEST_S3_SECRET_KEY")),
        ],
        Relay::Azure => vec![
            ("account-name", env("OUTPOST_TEST_AZURE_ACCOUNT")),
            ("account-key", env("OUTPOST_TEST_AZURE_KEY")),
        ],
        // fake-gcs-server takes no OAuth; object_store reads the endpoint from the
        // service-account file.
        Relay::Gcs => vec![(
            "service-account.json",
            json!({
                "type": "service_account",
                "gcs_base_url": env("OUTPOST_TEST_GCS_ENDPOINT"),
                "disable_oauth": true,
                "client_email": "outpost-e2e@example.iam.gserviceaccount.com",
                "private_key": "",
                "private_key_id": "outpost-e2e"
            })
            .to_string(),
        )],
    }
}

impl Cluster {
    fn new(name: &str, relay: Relay) -> Self {
        let dir = support::scratch(&format!("e2e-{name}"));
        let server = serve(dir.path());
        let prefix = format!("e2e-{}-{name}", std::process::id());
        let (relay_url, relay_yaml) = relay_options(relay, &prefix);
        // The agent options a site would set: its control plane, its relay bucket and its
        // manifest-signing key. The ingestion bucket (s3s-fs) listens on loopback, which
        // upload refuses without the explicit opt-in (security issue 13, M2).
        let options_yaml = format!(
            "namespace: {NAMESPACE}\ncontrolPlane:\n  url: {}\n  allowLoopbackIngest: true\n  insecureUnsignedJobs: true\nmanifestSigning:\n  secret: {MANIFEST_SIGNING_SECRET}\n{relay_yaml}",
            server.url
        );
        let options_file = dir.path().join("options.yaml");
        std::fs::write(&options_file, options_yaml).expect("options");
        let options = workflow_compiler::files::read_options(&options_file).expect("options");
        let descriptors = connector_descriptor::load::read_dir(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../connectors"),
        )
        .expect("descriptors");
        let rendered = workflow_compiler::render(RenderInput {
            descriptors: &descriptors,
            options: &options,
            options_source: "e2e",
            overlays: &[],
        })
        .expect("render");

        let (manifest_seed, manifest_public) = outpost_core::signing::keys::generate();
        let manifest_key =
            outpost_core::signing::keys::parse_verifying_key("key", Some(&manifest_public))
                .expect("public key")
                .expect("some");
        let kube = FakeKube::default();
        // Argo's controller configured as charts/outpost-stack configures it (security review
        // finding M6): the orchestrator reads this before every tick and refuses to run
        // without it, and the emulator, like the controller, then runs only Workflows that
        // reference a WorkflowTemplate, the orchestrator CronWorkflow's own included.
        kube.put_config_map(
            "argo",
            "workflow-controller-configmap",
            &[(
                "config",
                &format!("workflowRestrictions:\n  templateReferencing: {TEMPLATE_REFERENCING}\n"),
            )],
        );
        let kubeconfig = dir.path().join("kubeconfig");
        let kube_http = kube
            .serve_http(&kubeconfig, NAMESPACE)
            .expect("fake API server");
        let work = dir.path().join("pods");
        std::fs::create_dir_all(&work).expect("pods");
        let mut emulator = Emulator::new(&work)
            .with_binary("outpost", env!("CARGO_BIN_EXE_outpost"))
            .time_scale(TIME_SCALE)
            .namespace(NAMESPACE)
            .template_referencing(TEMPLATE_REFERENCING)
            // In a cluster the reporter and orchestrator use their service account; here the
            // fake API server's kubeconfig.
            .env("KUBECONFIG", &kubeconfig.display().to_string());
        let rendered: Vec<Value> = rendered
            .iter()
            .filter(|f| f.name != "kustomization.yaml")
            .map(|f| serde_saphyr::from_str(&f.contents).expect("rendered YAML"))
            .collect();
        for object in rendered.iter().cloned() {
            match object["kind"].as_str() {
                Some("WorkflowTemplate") => {
                    kube.install_template(object.clone());
                    emulator.install_template(object);
                }
                Some("ConfigMap") => {
                    let name = object["metadata"]["name"]
                        .as_str()
                        .expect("name")
                        .to_owned();
                    let mut store = emulator.store();
                    for (key, value) in object["data"].as_object().expect("data") {
                        store.put_config_map(&name, key, value.as_str().expect("string"));
                    }
                }
                _ => {}
            }
        }
        {
            let token = std::fs::read_to_string(server.agent_token()).expect("token");
            let mut store = emulator.store();
            store.put_secret("outpost-control-plane-token", "token", token.trim());
            store.put_secret(MANIFEST_SIGNING_SECRET, "key", manifest_seed.as_str());
            for (key, value) in relay_credentials(relay) {
                store.put_secret(RELAY_SECRET, key, value);
            }
        }
        // What Argo's controller publishes while it runs a Workflow: the pods and their logs
        // (which the exit handler ships) and the nodes' phases and messages (which it reports).
        let nodes: Arc<Mutex<BTreeMap<String, BTreeMap<String, Value>>>> = Arc::default();
        let mirror = kube.clone();
        let server = Arc::new(Mutex::new(server));
        let restart_on_next_pod = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (restart_server, restart) = (server.clone(), restart_on_next_pod.clone());
        emulator.on_pod(move |event: &PodEvent| {
            if restart.swap(false, std::sync::atomic::Ordering::SeqCst) {
                restart_server.lock().expect("lock").restart();
            }
            let logs: Vec<(&str, &str)> = event
                .containers
                .iter()
                .map(|c| (c.name.as_str(), c.log.as_str()))
                .collect();
            mirror.add_pod(&event.workflow, &event.pod_name, &logs);
            let mut nodes = nodes.lock().expect("lock");
            let workflow = nodes.entry(event.workflow.clone()).or_default();
            workflow.insert(
                event.node_name.clone(),
                json!({
                    "displayName": event.node_name, "type": "Pod", "templateName": event.template,
                    "phase": event.phase.as_str(), "message": event.message,
                }),
            );
            mirror.set_status(
                &event.workflow,
                json!({ "phase": "Running", "nodes": workflow.clone() }),
            );
        });
        Self {
            dir,
            server,
            restart_on_next_pod,
            kube,
            _kube_http: kube_http,
            emulator,
            relay,
            relay_url,
            rendered,
            manifest_key,
            ticks: std::cell::Cell::new(0),
        }
    }

    fn server(&self) -> std::sync::MutexGuard<'_, Server> {
        self.server.lock().expect("lock")
    }

    /// Stops the control plane now and starts it again when the next pod has ended.
    fn stop_control_plane_until_first_attempt_ends(&self) {
        self.server().stop();
        self.restart_on_next_pod
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The Secret `outpost-source-<connection>`: the password, and where it may be sent.
    fn connection(&self, connection: &str, values: &[(&str, &str)]) {
        let mut store = self.emulator.store();
        for (key, value) in values {
            store.put_secret(&format!("outpost-source-{connection}"), key, *value);
        }
    }

    /// A PostgreSQL connection bound to the test server (or to `port` on its host).
    fn pg_connection(&self, connection: &str, user: &str, password: &str, port: &str) {
        self.connection(
            connection,
            &[
                ("host", &env("OUTPOST_TEST_PG_HOST")),
                ("port", port),
                ("database", "postgres"),
                ("user", user),
                ("ssl-mode", "require"),
                ("password", password),
            ],
        );
    }

    /// A Snowflake connection bound to the emulator (plain HTTP: `ssl-mode=disable`).
    fn snowflake_connection(&self, connection: &str, user: &str, password: &str) {
        let url = env("OUTPOST_TEST_SNOWFLAKE_URL");
        let port = url.rsplit(':').next().expect("port");
        self.connection(
            connection,
            &[
                ("account", "outpost-e2e"),
                ("host", "127.0.0.1"),
                ("port", port),
                ("user", user),
                ("authenticator", "password"),
                ("ssl-mode", "disable"),
                ("password", password),
            ],
        );
    }

    /// A Tableau connection bound to the fake (plain HTTP: `ssl-mode=disable`), signing in
    /// with the Personal Access Token `user`/`password`.
    fn tableau_connection(&self, connection: &str, url: &str, user: &str, password: &str) {
        let port = url.rsplit(':').next().expect("port");
        self.connection(
            connection,
            &[
                ("host", "127.0.0.1"),
                ("port", port),
                ("site", TABLEAU_SITE),
                ("ssl-mode", "disable"),
                ("pat-name", user),
                ("pat-secret", password),
            ],
        );
    }

    /// A MariaDB connection bound to the test server.
    fn mysql_connection(&self, connection: &str, user: &str, password: &str) {
        self.connection(
            connection,
            &[
                ("host", &env("OUTPOST_TEST_MYSQL_HOST")),
                ("port", &env("OUTPOST_TEST_MYSQL_PORT")),
                ("user", user),
                ("ssl-mode", "require"),
                ("password", password),
            ],
        );
    }

    /// One orchestrator tick: the CronWorkflow's Workflow, run by the emulator. Answers the
    /// Workflows it submitted.
    fn orchestrate(&self) -> Vec<Value> {
        let before: Vec<String> = self.kube.workflows().iter().map(name_of).collect();
        let tick = self.ticks.get() + 1;
        self.ticks.set(tick);
        let workflow = json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": { "name": format!("outpost-orchestrator-{tick}"), "namespace": NAMESPACE },
            "spec": self.orchestrator_spec(),
        });
        let run = self
            .emulator
            .run(&workflow)
            .expect("the orchestrator Workflow is valid");
        assert_eq!(
            run.phase,
            Phase::Succeeded,
            "orchestrator tick: {}\n{}",
            run.message,
            logs(&run)
        );
        self.kube
            .workflows()
            .into_iter()
            .filter(|w| !before.contains(&name_of(w)))
            .collect()
    }

    fn orchestrator_spec(&self) -> Value {
        let cron = self
            .rendered
            .iter()
            .find(|o| {
                o["kind"] == "CronWorkflow" && o["metadata"]["name"] == "outpost-orchestrator"
            })
            .expect("the orchestrator CronWorkflow");
        cron["spec"]["workflowSpec"].clone()
    }

    /// Queues `job`, runs a tick, and runs the one Workflow it submitted.
    fn run_job(&self, job: &Value) -> WorkflowRun {
        let id = job["id"].as_str().expect("id");
        self.server().enqueue(id, job);
        let submitted = self.orchestrate();
        assert_eq!(submitted.len(), 1, "one Workflow for job {id}");
        let workflow = &submitted[0];
        // Only a reference and arguments: the template decides what runs.
        let spec = workflow["spec"].as_object().expect("spec");
        assert!(
            spec.keys()
                .all(|k| k == "workflowTemplateRef" || k == "arguments"),
            "{spec:?}"
        );
        let run = self
            .emulator
            .run(workflow)
            .expect("the connector Workflow is valid");
        self.kube.finish(&run.name, run.phase.as_str());
        run
    }
}

fn name_of(workflow: &Value) -> String {
    workflow["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Every container's log of a run, for failure messages.
fn logs(run: &WorkflowRun) -> String {
    run.nodes
        .iter()
        .filter(|n| !n.log.is_empty())
        .map(|n| format!("===== {} ({}) =====\n{}", n.name, n.phase.as_str(), n.log))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A job: only what a job may choose (the schemas to extract). Where the connection's
/// credentials go is its Secret's to say ([`Cluster::pg_connection`]).
fn pg_job(id: &str, connection: &str, mode: &str) -> Value {
    json!({
        "id": id, "runId": "r1", "connector": "postgres", "connection": connection,
        "transferMode": mode, "parameters": { "include-schemas": "^e2e_" }
    })
}

fn snowflake_database(tag: &str) -> String {
    // Not `E2E_<TAG>_<pid>`: DuckDB names are case-insensitive, and the schema is `e2e_<tag>_<pid>`.
    format!("OUTPOST_E2E_{}_{}", tag.to_uppercase(), std::process::id())
}

/// Only this test's database of the emulator, which every test process shares.
fn snowflake_job(id: &str, connection: &str, mode: &str, tag: &str) -> Value {
    json!({
        "id": id, "runId": "r1", "connector": "snowflake", "connection": connection,
        "transferMode": mode,
        "parameters": { "include-databases": format!("^{}$", snowflake_database(tag)), "include-schemas": "^e2e_" }
    })
}

/// A Tableau job: a small first page, so the run pages.
fn tableau_job(id: &str, connection: &str, mode: &str) -> Value {
    json!({
        "id": id, "runId": "r1", "connector": "tableau", "connection": connection,
        "transferMode": mode, "parameters": { "metadata-page-size": 7 }
    })
}

/// The Tableau site's content URL.
const TABLEAU_SITE: &str = "e2e-site";

/// The Tableau fake, on its own runtime, for as long as a test holds it.
struct TableauServer {
    // Declared before the runtime: the fake's task ends before its runtime does.
    fake: tableau_fake::TableauFake,
    _runtime: tokio::runtime::Runtime,
}

fn mysql_job(id: &str, connection: &str, mode: &str) -> Value {
    json!({
        "id": id, "runId": "r1", "connector": "mysql", "connection": connection,
        "transferMode": mode, "parameters": { "include-schemas": "^e2e_" }
    })
}

/// A source account and schema for one test: a login whose password is a canary, and a table
/// holding a canary row. Metadata extraction must carry neither anywhere.
struct Source {
    user: String,
    password: String,
    /// `None` for Tableau: the source reads no view data, and the fake serves none.
    row_canary: Option<String>,
    schema: String,
    /// What the delivered records must hold.
    expected: Vec<String>,
    tableau: Option<TableauServer>,
}

impl Source {
    /// A source with names unique to this test process (`salt` tells the engines' canaries
    /// apart), made in its engine by `create` from its user, password, row canary and schema.
    fn created(tag: &str, salt: &str, create: impl FnOnce(&str, &str, &str, &str)) -> Self {
        let pid = std::process::id();
        let mut source = Self {
            user: format!("e2e_{tag}_{pid}"),
            password: format!("CANARY-PASSWORD-{tag}-{pid}-{salt}"),
            row_canary: Some(format!("CANARY-ROW-{tag}-{pid}-{salt}")),
            schema: format!("e2e_{tag}_{pid}"),
            expected: Vec::new(),
            tableau: None,
        };
        create(
            &source.user,
            &source.password,
            source.row_canary.as_deref().unwrap_or_default(),
            &source.schema,
        );
        // The metadata: the schema, the table, its comment and the view.
        source.expected = [
            source.schema.as_str(),
            "customers",
            "e2e customers",
            "recent",
        ]
        .map(str::to_owned)
        .to_vec();
        source
    }

    /// The Tableau fake serving a small generated site (odd names and unicode), signed in to
    /// with a token whose secret is the canary.
    fn tableau(tag: &str) -> Self {
        let pid = std::process::id();
        let user = format!("e2e-token-{tag}");
        let password = format!("CANARY-PAT-SECRET-{tag}-{pid}-7d1e");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let site = tableau_fake::SiteModel::generate(
            TABLEAU_SITE,
            tableau_fake::Scale {
                workbooks: 6,
                sheets_per_workbook: 4,
                published: 3,
                fields_per_datasource: 5,
                tables: 9,
            },
        );
        // What the records must hold: a workbook, a sheet, a field, a table and the lineage
        // from a field to a column.
        let expected = vec![
            TABLEAU_SITE.to_owned(),
            serde_json::to_string(&site.workbooks[1].name).expect("name"),
            serde_json::to_string(&site.workbooks[0].sheets[1].name).expect("name"),
            serde_json::to_string(&site.fields[0].name).expect("name"),
            serde_json::to_string(&site.tables[2].name).expect("name"),
            "fieldToColumn".to_owned(),
        ];
        let fake = runtime.block_on(tableau_fake::TableauFake::start(
            site,
            &user,
            &password,
            tableau_fake::Faults::default(),
        ));
        Self {
            user,
            password,
            row_canary: None,
            schema: TABLEAU_SITE.to_owned(),
            expected,
            tableau: Some(TableauServer {
                fake,
                _runtime: runtime,
            }),
        }
    }

    fn postgres(tag: &str) -> Self {
        Self::created(tag, "8f2a", |user, password, row_canary, schema| {
            psql(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; DROP ROLE IF EXISTS {user};
             CREATE ROLE {user} LOGIN PASSWORD '{password}';
             CREATE SCHEMA {schema};
             CREATE TABLE {schema}.customers (id int PRIMARY KEY, note text);
             COMMENT ON TABLE {schema}.customers IS 'e2e customers';
             INSERT INTO {schema}.customers VALUES (1, '{row_canary}');
             CREATE VIEW {schema}.recent AS SELECT id FROM {schema}.customers;
             GRANT USAGE ON SCHEMA {schema} TO {user};"
            ));
        })
    }

    /// A fakesnow database `OUTPOST_E2E_<TAG>_<pid>` (fakesnow attaches database names unquoted:
    /// plain upper case) with the schema, table, view and row canary of the others. The
    /// "user" and "password" are the connection's: fakesnow checks no credential (the
    /// metadata-extract tests check logins through their conformance layer), but the
    /// password is still a canary that must never be delivered.
    fn snowflake(tag: &str) -> Self {
        let mut source = Self::created(tag, "51c7", |_user, _password, row_canary, schema| {
            let database = snowflake_database(tag);
            support::snowflake(&[
                &format!("CREATE OR REPLACE DATABASE {database}"),
                &format!("CREATE SCHEMA {database}.\"{schema}\""),
                &format!(
                    "CREATE TABLE {database}.\"{schema}\".\"customers\" (\"id\" INT PRIMARY KEY, \"note\" TEXT)"
                ),
                &format!(
                    "COMMENT ON TABLE {database}.\"{schema}\".\"customers\" IS 'e2e customers'"
                ),
                &format!(
                    "INSERT INTO {database}.\"{schema}\".\"customers\" VALUES (1, '{row_canary}')"
                ),
                &format!(
                    "CREATE VIEW {database}.\"{schema}\".\"recent\" AS SELECT \"id\" FROM {database}.\"{schema}\".\"customers\""
                ),
            ]);
        });
        // fakesnow reports every table comment as '' in SHOW TABLES (a named deviation;
        // Snowflake's SHOW TABLES has the comment).
        source.expected.retain(|e| e != "e2e customers");
        source
    }

    fn mysql(tag: &str) -> Self {
        Self::created(tag, "93be", |user, password, row_canary, schema| {
            support::mysql(&format!(
            "DROP DATABASE IF EXISTS {schema}; DROP USER IF EXISTS '{user}'@'%';
             CREATE DATABASE {schema};
             CREATE TABLE {schema}.customers (id int PRIMARY KEY, note text) COMMENT 'e2e customers';
             INSERT INTO {schema}.customers VALUES (1, '{row_canary}');
             CREATE VIEW {schema}.recent AS SELECT id FROM {schema}.customers;
             CREATE USER '{user}'@'%' IDENTIFIED BY '{password}';
             GRANT SHOW VIEW ON {schema}.* TO '{user}'@'%';"
            ));
        })
    }
}

/// A delivered run, read back from its bucket: the manifest and every file it lists, each
/// checked against the manifest's SHA-256 and size, decompressed.
struct Delivered {
    manifest: Value,
    /// The manifest as stored.
    manifest_bytes: Vec<u8>,
    /// The files' decompressed contents, concatenated.
    records: Vec<u8>,
}

fn bucket_settings(relay: Option<Relay>, credentials: &Path) -> delivery::bucket::StoreSettings {
    std::fs::create_dir_all(credentials).expect("credentials");
    for (key, value) in relay_credentials(relay.unwrap_or(Relay::S3)) {
        std::fs::write(credentials.join(key), value).expect("credential");
    }
    delivery::bucket::StoreSettings {
        endpoint: Some(match relay.unwrap_or(Relay::S3) {
            Relay::S3 => env("OUTPOST_TEST_S3_ENDPOINT"),
            Relay::Azure => env("OUTPOST_TEST_AZURE_ENDPOINT"),
            Relay::Gcs => env("OUTPOST_TEST_GCS_ENDPOINT"),
        }),
        region: Some("us-east-1".to_owned()),
        azure_account: (relay == Some(Relay::Azure)).then(|| env("OUTPOST_TEST_AZURE_ACCOUNT")),
        credentials_dir: Some(credentials.to_owned()),
        ..Default::default()
    }
}

/// Reads `<url>/<connection>/<job>/<run>/` back; `None` when it holds no manifest.
fn read_run(url: &str, relay: Option<Relay>, scratch: &Path, run: &str) -> Option<Delivered> {
    use object_store::ObjectStoreExt as _;
    use sha2::Digest as _;
    delivery::install_crypto_provider();
    let settings = bucket_settings(relay, &scratch.join("reader-credentials"));
    let bucket = delivery::bucket::Bucket::open(
        &delivery::bucket::BucketUrl::parse(url).expect("bucket URL"),
        &settings,
    )
    .expect("bucket");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let get = |relative: &str| {
            let location = bucket.location(run, relative).expect("location");
            let store = bucket.store.clone();
            async move {
                match store.get(&location).await {
                    Ok(object) => Some(object.bytes().await.expect("object body").to_vec()),
                    Err(object_store::Error::NotFound { .. }) => None,
                    Err(e) => panic!("reading {location}: {e}"),
                }
            }
        };
        let manifest_bytes = get("manifest.json").await?.to_vec();
        let manifest: Value = serde_json::from_slice(&manifest_bytes).expect("manifest JSON");
        let mut records = Vec::new();
        for file in manifest["files"].as_array().expect("files") {
            let path = file["path"].as_str().expect("path");
            let bytes = get(path)
                .await
                .unwrap_or_else(|| panic!("{path} is listed but missing"));
            let digest: String = sha2::Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(
                Some(digest.as_str()),
                file["sha256"].as_str(),
                "{path}: SHA-256"
            );
            assert_eq!(
                Some(bytes.len() as u64),
                file["bytes"].as_u64(),
                "{path}: size"
            );
            records.extend(zstd::decode_all(bytes.as_slice()).expect("zstd"));
        }
        Some(Delivered {
            manifest,
            manifest_bytes,
            records,
        })
    })
}

impl Cluster {
    /// Where a job's run was delivered: the relay bucket, or the control plane's ingest bucket.
    fn delivered(&self, job: &Value) -> Option<Delivered> {
        let run = format!(
            "{}/{}/{}",
            job["connection"].as_str().expect("connection"),
            job["id"].as_str().expect("id"),
            job["runId"].as_str().expect("run id")
        );
        if job["transferMode"] == "bucket-relay" {
            read_run(&self.relay_url, Some(self.relay), self.dir.path(), &run)
        } else {
            let url = format!(
                "s3://{}/ingest-{}",
                env("OUTPOST_TEST_S3_BUCKET"),
                std::process::id()
            );
            read_run(&url, None, self.dir.path(), &run)
        }
    }

    /// Everything shipped out of the cluster's runs: the control plane's files (statuses,
    /// logs, heartbeats) and the relay bucket's run logs.
    fn shipped(&self) -> Vec<u8> {
        let mut shipped = self.server().files();
        if self.relay == Relay::S3 {
            let prefix = self.relay_url.split_once("//").expect("url").1;
            let logs = PathBuf::from(env("OUTPOST_TEST_S3_DIR"))
                .join(prefix)
                .join("_logs");
            for entry in walk(&logs) {
                shipped.extend(std::fs::read(entry).expect("log"));
            }
        }
        shipped
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// The connectors a cluster runs: those with a rendered WorkflowTemplate.
fn cluster_connectors(cluster: &Cluster) -> Vec<String> {
    cluster
        .rendered
        .iter()
        .filter(|o| o["kind"] == "WorkflowTemplate")
        .filter_map(|o| {
            o["metadata"]["labels"]["outpost.dev/connector"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn every_connector_in_both_transfer_modes_reaches_succeeded_with_a_verified_manifest() {
    let cluster = Cluster::new("all", Relay::S3);
    let connectors = cluster_connectors(&cluster);
    let mut sources = Vec::new();
    let mut runs = 0;
    for connector in &connectors {
        let source = match connector.as_str() {
            "postgres" => Source::postgres("all"),
            "mysql" => Source::mysql("all"),
            "snowflake" => Source::snowflake("all"),
            "tableau" => Source::tableau("all"),
            other => panic!("connector `{other}` has a WorkflowTemplate but no job here: add one"),
        };
        for mode in ["bucket-relay", "direct-ingestion"] {
            let connection = format!("{connector}-{}", &mode[..6]);
            let id = format!("job-{connector}-{mode}");
            let job = match connector.as_str() {
                "postgres" => pg_job(&id, &connection, mode),
                "snowflake" => snowflake_job(&id, &connection, mode, "all"),
                "tableau" => tableau_job(&id, &connection, mode),
                _ => mysql_job(&id, &connection, mode),
            };
            match connector.as_str() {
                "postgres" => cluster.pg_connection(
                    &connection,
                    &source.user,
                    &source.password,
                    &env("OUTPOST_TEST_PG_PORT"),
                ),
                "snowflake" => {
                    cluster.snowflake_connection(&connection, &source.user, &source.password)
                }
                "tableau" => cluster.tableau_connection(
                    &connection,
                    &source.tableau.as_ref().expect("the fake").fake.url,
                    &source.user,
                    &source.password,
                ),
                _ => cluster.mysql_connection(&connection, &source.user, &source.password),
            }
            let run = cluster.run_job(&job);
            assert_eq!(
                run.phase,
                Phase::Succeeded,
                "{id}: {}\n{}",
                run.message,
                logs(&run)
            );
            assert_eq!(run.attempts("run"), 1, "{id}");
            let (state, message) = cluster.server().state(&id);
            assert_eq!(state, "succeeded", "{id}: {message:?}");
            let delivered = cluster
                .delivered(&job)
                .unwrap_or_else(|| panic!("{id}: no manifest"));
            // The manifest names the run it belongs to.
            for (field, expected) in [
                ("connector", json!(connector)),
                ("connection", json!(connection)),
                ("jobId", json!(id)),
                ("runId", json!("r1")),
            ] {
                assert_eq!(
                    delivered.manifest[field], expected,
                    "{id}: manifest {field}"
                );
            }
            // Signed by the agent's key, as delivered (the digests it lists were checked above).
            outpost_core::signing::verify_manifest(
                &delivered.manifest_bytes,
                &cluster.manifest_key,
            )
            .unwrap_or_else(|e| panic!("{id}: the delivered manifest: {e}"));
            // The metadata is there.
            let text = String::from_utf8_lossy(&delivered.records);
            for expected in &source.expected {
                assert!(
                    text.contains(expected.as_str()),
                    "{id}: `{expected}` missing from the delivered records"
                );
            }
            // …and never a row, nor the password.
            if let Some(row) = &source.row_canary {
                assert!(
                    !text.contains(row.as_str()),
                    "{id}: a table row was delivered"
                );
            }
            assert!(
                !text.contains(&source.password),
                "{id}: the password was delivered"
            );
            runs += 1;
        }
        if let Some(tableau) = &source.tableau {
            // Each run signed in once and out once: one session per token, never left open.
            let counters = &tableau.fake.counters;
            let sign_ins = counters.sign_ins.load(std::sync::atomic::Ordering::SeqCst);
            let sign_outs = counters.sign_outs.load(std::sync::atomic::Ordering::SeqCst);
            assert_eq!((sign_ins, sign_outs), (2, 2), "Tableau sessions");
        }
        sources.push(source);
    }
    println!(
        "{runs} emulated runs succeeded: {connectors:?} × bucket relay (s3s-fs) and direct ingestion"
    );
    assert_eq!(runs, 2 * connectors.len());
    assert!(
        connectors.len() >= 2,
        "postgres and mysql at least: {connectors:?}"
    );
    // Canaries: the search finds what is there (the connection names).
    assert_no_canary_shipped(&cluster, "postgres-bucket", &sources);
}

/// Canaries: nothing `cluster` shipped (statuses, logs in the control plane and in the
/// bucket) holds a password or a row of `sources`; the search finds `present`, which is there.
fn assert_no_canary_shipped<'a>(
    cluster: &Cluster,
    present: &str,
    sources: impl IntoIterator<Item = &'a Source>,
) {
    let shipped = cluster.shipped();
    assert!(
        support::contains(&shipped, present),
        "the search finds nothing"
    );
    for source in sources {
        assert!(
            !support::contains(&shipped, &source.password),
            "a password was shipped"
        );
        assert!(
            !source
                .row_canary
                .as_ref()
                .is_some_and(|row| support::contains(&shipped, row)),
            "a row was shipped"
        );
    }
}

#[test]
fn bucket_relay_reaches_azurite_and_fake_gcs() {
    for relay in [Relay::Azure, Relay::Gcs] {
        let tag = format!("{relay:?}").to_lowercase();
        let cluster = Cluster::new(&tag, relay);
        let source = Source::postgres(&tag);
        let connection = format!("pg-{tag}");
        cluster.pg_connection(
            &connection,
            &source.user,
            &source.password,
            &env("OUTPOST_TEST_PG_PORT"),
        );
        let job = pg_job(&format!("job-{tag}"), &connection, "bucket-relay");
        let run = cluster.run_job(&job);
        assert_eq!(
            run.phase,
            Phase::Succeeded,
            "{tag}: {}\n{}",
            run.message,
            logs(&run)
        );
        assert_eq!(cluster.server().state(&format!("job-{tag}")).0, "succeeded");
        let delivered = cluster
            .delivered(&job)
            .unwrap_or_else(|| panic!("{tag}: no manifest"));
        assert!(String::from_utf8_lossy(&delivered.records).contains("customers"));
    }
}

/// A port nothing listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    port.to_string()
}

#[test]
fn failure_paths_end_in_their_documented_state_after_their_documented_attempts() {
    let cluster = Cluster::new("failures", Relay::S3);
    let source = Source::postgres("fail");
    let limit = 3; // the postgres descriptor's `retries.limit`

    // Source down: exit 75, retried `limit` times, then `failed`.
    cluster.pg_connection("pg-down", &source.user, &source.password, &closed_port());
    let job = pg_job("job-source-down", "pg-down", "bucket-relay");
    let run = cluster.run_job(&job);
    assert_eq!(run.phase, Phase::Failed, "{}", logs(&run));
    assert_eq!(run.attempts("run"), limit + 1, "{}", logs(&run));
    let (state, message) = cluster.server().state("job-source-down");
    assert_eq!(state, "failed");
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("exit code 75")),
        "{message:?}"
    );
    assert!(
        cluster.delivered(&job).is_none(),
        "no manifest for a failed run"
    );

    // Wrong password: exit 77, not retried.
    let pg_port = env("OUTPOST_TEST_PG_PORT");
    cluster.pg_connection("pg-wrong", &source.user, "not-the-password", &pg_port);
    let job = pg_job("job-wrong-password", "pg-wrong", "bucket-relay");
    let run = cluster.run_job(&job);
    assert_eq!(run.phase, Phase::Failed);
    assert_eq!(
        run.attempts("run"),
        1,
        "a refused login is not retried\n{}",
        logs(&run)
    );
    let (state, message) = cluster.server().state("job-wrong-password");
    assert_eq!(state, "failed");
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("exit code 77")),
        "{message:?}"
    );

    // Missing connection Secret: fails at once (exit 78, not retried), well within the
    // deadline, and the concurrency slot is free again.
    let job = pg_job("job-missing-secret", "pg-nosecret", "bucket-relay");
    let run = cluster.run_job(&job);
    assert_eq!(run.phase, Phase::Failed);
    assert_eq!(run.attempts("run"), 1, "{}", logs(&run));
    assert!(
        run.duration < 600.0,
        "failed after {} emulated seconds",
        run.duration
    );
    let (state, message) = cluster.server().state("job-missing-secret");
    assert_eq!(state, "failed");
    let message = message.unwrap_or_default();
    assert!(message.contains("exit code 78"), "{message}");
    // The shipped logs say which Secret to create.
    assert!(
        support::contains(
            &cluster.shipped(),
            "the Secret of connection `pg-nosecret` is missing"
        ),
        "the reason is not in the shipped logs"
    );
    assert_eq!(
        cluster
            .emulator
            .semaphore_holders("outpost-concurrency", "postgres"),
        0
    );

    // Control plane down during upload: the upload's exit 75 is retried, and the run succeeds
    // once the control plane is back.
    cluster.pg_connection("pg-cp-down", &source.user, &source.password, &pg_port);
    let job = pg_job("job-cp-down", "pg-cp-down", "direct-ingestion");
    cluster.server().enqueue("job-cp-down", &job);
    let submitted = cluster.orchestrate();
    assert_eq!(submitted.len(), 1);
    cluster.stop_control_plane_until_first_attempt_ends();
    let run = cluster.emulator.run(&submitted[0]).expect("valid");
    assert_eq!(run.phase, Phase::Succeeded, "{}", logs(&run));
    assert_eq!(run.attempts("run"), 2, "{}", logs(&run));
    assert!(
        run.nodes.iter().any(|n| n.exit_code == Some(75)),
        "the first attempt's upload exited 75"
    );
    assert_eq!(cluster.server().state("job-cp-down").0, "succeeded");
    assert!(cluster.delivered(&job).is_some());

    // Extract killed mid-run (a source that accepts and never answers, until the attempt's
    // deadline kills the pod): no manifest anywhere, and the job `failed`.
    let stall = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = stall.local_addr().expect("address").port().to_string();
    cluster.pg_connection("pg-stall", &source.user, &source.password, &port);
    let job = pg_job("job-killed", "pg-stall", "bucket-relay");
    let run = cluster.run_job(&job);
    drop(stall);
    assert_eq!(run.phase, Phase::Failed, "{}", logs(&run));
    assert!(
        run.nodes.iter().any(|n| n.message.contains("deadline")),
        "killed by its deadline: {}",
        logs(&run)
    );
    assert_eq!(cluster.server().state("job-killed").0, "failed");
    assert!(
        cluster.delivered(&job).is_none(),
        "a killed extraction left a manifest"
    );

    // Canaries: the password (also sent to the wrong and stalled servers' jobs) and the row.
    assert_no_canary_shipped(&cluster, "pg-down", [&source]);
}
