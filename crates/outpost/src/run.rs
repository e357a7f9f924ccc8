//! `outpost run`: one job end to end on this machine (local mode), no Kubernetes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use metadata_extract::EntityKind;

use crate::extract::{ExtractArgs, cause_chain, extract, prepare};
use crate::upload::{DeliveryFlags, RunIdentityArgs, upload};

/// The bundled sample catalog's generator: a SQLite script, run into a temporary database.
const SAMPLE_CATALOG_SQL: &str = include_str!("../../../samples/sample-catalog.sql");

/// Where the default run delivers: a local bucket in the current folder.
const DEFAULT_OUTPUT: &str = "outpost-output";

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The connector. Without it, the bundled sample catalog (SQLite) is extracted.
    #[arg(long)]
    connector: Option<String>,
    /// A connector parameter as `name=value`; repeat for each.
    #[arg(long = "param", value_name = "NAME=VALUE", requires = "connector")]
    params: Vec<String>,
    /// Folder with one file per declared secret, named after it (`password`).
    #[arg(long, value_name = "DIR")]
    secrets_dir: Option<PathBuf>,
    /// Connection id (a DNS label). Default: `sample` for the sample, else `local`.
    #[arg(long)]
    connection: Option<String>,
    /// Job id. Default: `local`.
    #[arg(long, default_value = "local")]
    job_id: String,
    /// Run id. Default: the start time, `20261126T051245Z`.
    #[arg(long)]
    run_id: Option<String>,
    /// Read descriptors from this folder instead of the ones built in.
    #[arg(long, value_name = "DIR")]
    connectors: Option<PathBuf>,
    /// Poll this control plane and run its jobs locally (sites without Kubernetes).
    /// With --token-file (and --to for bucket relay). Jobs are admitted exactly as the
    /// orchestrator admits them; each job's logs (redacted) and final status go back to the
    /// control plane.
    #[arg(long = "control-plane", value_name = "URL", conflicts_with_all = ["connector", "params"])]
    control_plane: Option<String>,
    /// With --control-plane: folder holding one folder per connection, named after it, with
    /// that connection's secret files (`<DIR>/pg-prod/password`).
    #[arg(long, value_name = "DIR", requires = "control_plane")]
    secrets_root: Option<PathBuf>,
    /// With --control-plane: poll once, run what is pending, and exit.
    #[arg(long, requires = "control_plane")]
    once: bool,
    /// With --control-plane: time between polls.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    interval: std::time::Duration,
    /// With --control-plane: this runner's id in heartbeats, and the agent a signed job
    /// must be signed for.
    #[arg(long, env = "OUTPOST_AGENT_ID", default_value = "local")]
    agent_id: String,
    /// With --control-plane: accept only jobs signed with this Ed25519 public key (base64),
    /// for --agent-id, unexpired, and whose nonce was never seen.
    #[arg(long, value_name = "BASE64", env = "OUTPOST_JOB_SIGNING_KEY")]
    job_signing_key: Option<String>,
    /// With --control-plane and no --job-signing-key: admit unsigned jobs (refused
    /// otherwise). Logged as a warning.
    #[arg(long)]
    insecure_unsigned_jobs: bool,
    /// With --job-signing-key: folder where the nonces of signed jobs are kept until they
    /// expire (`seen-nonces.json`). Default: `$XDG_STATE_HOME/outpost`, else
    /// `~/.local/state/outpost`.
    #[arg(long, value_name = "DIR", env = "OUTPOST_STATE_DIR")]
    state_dir: Option<PathBuf>,
    #[command(flatten)]
    delivery: DeliveryFlags,
}

/// Why a run stopped, with the exit code of the step that failed.
struct Failure {
    message: String,
    code: u8,
}

pub fn run(mut args: RunArgs, quiet: bool, show_progress: bool) -> ExitCode {
    delivery::install_crypto_provider();
    let runtime = match crate::delivery_runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    if args.control_plane.is_some() {
        return runtime.block_on(poll_control_plane(args, quiet));
    }
    if args.delivery.to.is_none() && args.delivery.urls.is_none() && !args.delivery.direct {
        match std::env::current_dir() {
            Ok(cwd) => {
                args.delivery.to = Some(format!("file://{}", cwd.join(DEFAULT_OUTPUT).display()))
            }
            Err(error) => {
                eprintln!("error: cannot read the current folder: {error}");
                return ExitCode::from(74);
            }
        }
    }
    match runtime.block_on(run_job(&args, show_progress)) {
        Ok(summary) => {
            if !quiet {
                println!("{summary}");
            }
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("error: {} (exit code {})", failure.message, failure.code);
            ExitCode::from(failure.code)
        }
    }
}

/// `20261126T051245Z`: a run id from the clock, sortable and a valid path segment.
fn run_id_now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(['-', ':'], "")
}

async fn run_job(args: &RunArgs, show_progress: bool) -> Result<String, Failure> {
    let started = Instant::now();
    let staging = tempfile::Builder::new()
        .prefix("outpost-run-")
        .tempdir()
        .map_err(|e| Failure {
            message: format!("cannot create a staging folder: {e}"),
            code: 74,
        })?;
    let sample = args.connector.is_none();
    let (connector, params) = match &args.connector {
        Some(connector) => (connector.clone(), args.params.clone()),
        None => {
            let db = staging.path().join("sample-catalog.db");
            build_sample(&db)?;
            ("sqlite".to_owned(), vec![format!("path={}", db.display())])
        }
    };
    let connection = args
        .connection
        .clone()
        .unwrap_or_else(|| if sample { "sample" } else { "local" }.to_owned());
    let run_id = args.run_id.clone().unwrap_or_else(run_id_now);
    let out = staging.path().join("out");
    let extract_args = ExtractArgs {
        connector,
        params,
        secrets_dir: args.secrets_dir.clone(),
        out: out.clone(),
        connection: Some(connection.clone()),
        job_id: Some(args.job_id.clone()),
        run_id: Some(run_id.clone()),
        connectors: args.connectors.clone(),
        part_size_mib: 64,
        outcome_file: None,
    };
    let (descriptor, parameters) = prepare(&extract_args).map_err(|e| Failure {
        message: format!("{e:#}"),
        code: metadata_extract::exit::USAGE,
    })?;
    let manifest = extract(&extract_args, &descriptor, parameters, show_progress)
        .await
        .map_err(|e| Failure {
            message: cause_chain(&e),
            code: e.exit_code(),
        })?;
    let extracted_in = started.elapsed();
    let identity = RunIdentityArgs {
        connector: descriptor.name(),
        connection: &connection,
        job_id: &args.job_id,
        run_id: &run_id,
    };
    let report = upload(&out, identity, &args.delivery, show_progress)
        .await
        .map_err(|e| Failure {
            message: delivery::redact_urls(&e.to_string()),
            code: e.exit_code(),
        })?;

    let counts: Vec<String> = EntityKind::ALL
        .iter()
        .filter_map(|kind| {
            let n = manifest.totals.get(kind).copied().unwrap_or(0);
            (n > 0).then(|| format!("{n} {}", noun(*kind, n)))
        })
        .collect();
    let source = if sample {
        "the sample catalog".to_owned()
    } else {
        format!("`{}`", descriptor.name())
    };
    let mut summary = format!(
        "Extracted {source} in {:.2} s: {}.\n",
        extracted_in.as_secs_f64(),
        counts.join(", ")
    );
    if !manifest.skipped.is_empty() {
        summary.push_str(&format!(
            "Skipped {} (listed in the manifest with the reason).\n",
            manifest.skipped.len()
        ));
    }
    summary.push_str(&format!(
        "Delivered {} files and the manifest, {}, in {:.2} s.\nManifest: {}",
        report.files,
        human_bytes(report.bytes),
        started.elapsed().as_secs_f64(),
        report.manifest
    ));
    if report.already_delivered {
        summary.push_str(" (already delivered; nothing sent)");
    }
    Ok(summary)
}

fn build_sample(db: &Path) -> Result<(), Failure> {
    let connection = rusqlite::Connection::open(db).map_err(|e| Failure {
        message: format!("cannot create the sample catalog: {e}"),
        code: 74,
    })?;
    connection
        .execute_batch(SAMPLE_CATALOG_SQL)
        .map_err(|e| Failure {
            message: format!("samples/sample-catalog.sql: {e}"),
            code: 70,
        })
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        b if b < 1 << 30 => format!("{:.1} MiB", b as f64 / 1048576.0),
        b => format!("{:.2} GiB", b as f64 / 1073741824.0),
    }
}

/// `1 table`, `30 tables`, `1 index`, `40 indexes`.
fn noun(kind: EntityKind, n: u64) -> &'static str {
    let (one, many) = match kind {
        EntityKind::Database => ("database", "databases"),
        EntityKind::Schema => ("schema", "schemas"),
        EntityKind::Table => ("table or view", "tables and views"),
        EntityKind::Column => ("column", "columns"),
        EntityKind::Constraint => ("constraint", "constraints"),
        EntityKind::Index => ("index", "indexes"),
        EntityKind::ViewDefinition => ("view definition", "view definitions"),
        EntityKind::Lineage => ("lineage edge", "lineage edges"),
    };
    if n == 1 { one } else { many }
}

fn fail(message: impl std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("error: {message} (exit code {code})");
    ExitCode::from(code)
}

/// Local mode against a control plane: poll, run, report; once or every --interval.
async fn poll_control_plane(mut args: RunArgs, quiet: bool) -> ExitCode {
    use crate::local_agent::LocalAgent;
    args.delivery.control_plane_url = args.control_plane.clone();
    if args.delivery.token_file.is_none() {
        return fail("--control-plane needs --token-file", delivery::exit::CONFIG);
    }
    let client = match crate::upload::control_plane_client(&args.delivery) {
        Ok(client) => client,
        Err(e) => return fail(&e, e.exit_code()),
    };
    let descriptors = match crate::agent::descriptors(args.connectors.as_deref()) {
        Ok(d) => std::sync::Arc::new(d),
        Err(e) => return fail(format!("{e:#}"), delivery::exit::CONFIG),
    };
    if let Err(e) = crate::agent::require_job_signing(
        args.job_signing_key.as_deref(),
        args.insecure_unsigned_jobs,
    ) {
        return fail(e, delivery::exit::CONFIG);
    }
    let signing_key = match crate::agent::signing_key(args.job_signing_key.as_deref()) {
        Ok(key) => key,
        Err(e) => return fail(e, delivery::exit::CONFIG),
    };
    // Signed jobs are run once: their nonces must be kept somewhere that outlives us.
    let nonces = match (
        &signing_key,
        args.state_dir
            .clone()
            .or_else(crate::nonce_store::default_state_dir),
    ) {
        (None, _) => None,
        (Some(_), None) => {
            return fail(
                "--job-signing-key needs --state-dir (no XDG_STATE_HOME or HOME to default to)",
                delivery::exit::CONFIG,
            );
        }
        (Some(_), Some(dir)) => match crate::nonce_store::NonceStore::open(&dir) {
            Ok(store) => Some(store),
            Err(e) => return fail(e, delivery::exit::CONFIG),
        },
    };
    let claimant = format!(
        "{}-{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "local".to_owned()),
        std::process::id()
    );
    let runner = LocalAgent {
        // The runner reports and ships logs as the holder of its jobs' leases.
        client: client.with_claimant(&claimant),
        descriptors,
        signing_key,
        nonces,
        secrets_root: args.secrets_root.clone(),
        delivery: args.delivery.clone(),
        agent_id: args.agent_id.clone(),
        insecure_options: crate::agent::insecure_options(
            args.insecure_unsigned_jobs,
            args.delivery.insecure_plain_http,
        ),
        claimant,
        lease: std::time::Duration::from_secs(3600),
    };
    let mut last_poll = None;
    loop {
        match runner.poll_once(last_poll).await {
            Ok(summary) => {
                last_poll = Some(std::time::SystemTime::now());
                if !quiet {
                    println!(
                        "Polled {}: {} succeeded, {} failed, {} rejected, {} left to other runners.",
                        args.control_plane.as_deref().unwrap_or_default(),
                        summary.succeeded,
                        summary.failed,
                        summary.rejected,
                        summary.skipped
                    );
                }
            }
            Err(e) if args.once => return fail(&e, e.exit_code()),
            Err(e) => tracing::error!("poll failed, trying again in {:?}: {e}", args.interval),
        }
        if args.once {
            return ExitCode::SUCCESS;
        }
        tokio::select! {
            () = tokio::time::sleep(args.interval) => {}
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
        }
    }
}
