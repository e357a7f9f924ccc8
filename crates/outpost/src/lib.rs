//! `outpost`: the one binary whose subcommands are the container entrypoints of every Argo
//! step, plus the tools that generate what Argo CD syncs.
//!
//! A library so that tests parse argument vectors with the very parser the binary uses
//! ([`Cli`]): every argv a rendered WorkflowTemplate passes must be one it accepts.
//!
//! Raw arguments → validated inputs → run → a deliberate exit code (Argo's retry policy and
//! CI read it). Errors are printed with their whole cause chain.

use std::path::PathBuf;
use std::process::ExitCode;

mod agent;
mod extract;
mod local_agent;
mod nonce_store;
mod outcome;
mod run;
mod upload;

use anyhow::Context;
use clap::{Parser, Subcommand};
use workflow_compiler::{AgentOptions, RenderInput};
use workflow_compiler::{chart, files};

/// Exit code for a usage or input error (bad descriptor, bad options, stale output): a retry
/// cannot help.
const EXIT_INPUT: u8 = 2;
/// Exit code when `render --check` finds the committed output stale.
const EXIT_STALE: u8 = 1;

/// The command line of `outpost`: every subcommand and its flags.
#[derive(Parser, Debug)]
#[command(
    name = "outpost",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("OUTPOST_COMMIT"), ")"),
    about = "Outpost: a secure, Argo-native metadata agent",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr: `text` (coloured on a terminal) or `json` (one object per line,
    /// for log collectors).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "OUTPOST_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    /// Only warnings and errors: no progress display, no summary.
    #[arg(long, short, global = true)]
    quiet: bool,
}

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Extract a source's metadata into an output folder (the connector pod's first step).
    ///
    /// Parameters are checked against the connector's descriptor; secrets are read from
    /// files named after them in --secrets-dir. The folder gets one zstd-compressed NDJSON
    /// stream per entity kind and, last, manifest.json. Exit codes: 0 success, 64 bad
    /// parameters, 74 output not writable, 75 source unreachable (a retry may help),
    /// 77 login refused, 78 secret missing or TLS misconfigured.
    Extract(extract::ExtractArgs),
    /// Deliver an extracted run (the connector pod's second step): bucket relay or direct
    /// ingestion, manifest.json last.
    ///
    /// Every file is checked against the manifest's SHA-256 while it is read; the manifest
    /// goes up only after every file succeeded, so a reader that sees it sees a complete run.
    /// Re-running is safe: an identical delivery is a no-op, and leftovers of a different
    /// earlier attempt are removed before the new manifest is written. Exit codes: 0
    /// success, 64 bad arguments, 65 a file differs from its manifest entry, 66 no manifest
    /// (extraction did not finish), 75 the store kept failing (a retry may help), 77 the
    /// store or a pre-signed URL refused the request, 78 missing or unreadable credentials.
    Upload(upload::UploadArgs),
    /// Run one job end to end on this machine, no Kubernetes: extract, then deliver.
    ///
    /// With no arguments, extracts the bundled sample catalog (a SQLite database built from
    /// samples/sample-catalog.sql) and relays it to ./outpost-output/ as a local bucket,
    /// then prints a summary. With arguments, runs any connector against any source and
    /// delivers to any bucket (--to) or through pre-signed URLs (--direct --urls). Exit
    /// codes are those of `extract` and `upload`.
    Run(run::RunArgs),
    /// One orchestrator tick (the orchestrator CronWorkflow's step): poll the control plane,
    /// admit each job against its connector descriptor, submit a Workflow that only
    /// references the connector's WorkflowTemplate, report what happened.
    ///
    /// Jobs that ask for anything a descriptor does not declare are rejected and reported
    /// with every reason, never submitted. Workflow names derive from job and run ids, so a
    /// job is submitted once however ticks overlap or crash. Exit codes: 0 every job
    /// handled, 75 the control plane or the API server did not answer, or some jobs are
    /// left for the next tick, 77 the token was refused, 78 bad configuration, or Argo's
    /// workflow controller would run Workflows with inline templates (its ConfigMap sets no
    /// `workflowRestrictions.templateReferencing: Strict` or `Secure`, or cannot be read):
    /// nothing is claimed then, unless --insecure-allow-unrestricted-templates.
    Orchestrate(agent::OrchestrateArgs),
    /// Tell the control plane the agent is alive: version, Kubernetes and Argo
    /// reachability, running Workflows, the last successful poll. Also logs whether Argo runs
    /// only Workflows that reference a WorkflowTemplate (a warning when not).
    ///
    /// Exit codes: 0 sent, 75 the control plane did not answer, 77 the token was refused,
    /// 78 bad configuration.
    Heartbeat(agent::HeartbeatArgs),
    /// Report a run's final status and ship its logs, secrets redacted (each connector
    /// Workflow's exit handler).
    ///
    /// Exit codes: 0 reported, 75 the control plane did not answer, 77 the token was
    /// refused, 78 bad configuration.
    Report(agent::ReportArgs),
    /// The reference control plane: serve it, queue jobs on it, print its API document.
    #[command(subcommand)]
    ControlPlane(agent::ControlPlaneCommand),
    /// Compile connector descriptors into Argo WorkflowTemplates and CronWorkflows.
    ///
    /// Writes one file per object into the output folder, each with a header naming its
    /// inputs, plus a kustomization.yaml listing them. Files the render no longer produces
    /// are deleted. With a Helm chart (--chart, or charts/outpost when run in the repository
    /// without --out or --options), the same objects go into the chart too, compiled from its
    /// `agent:` values. With --check, writes nothing and exits 1 with a diff when stale.
    Render(RenderArgs),
    /// Print a JSON Schema.
    Schema {
        /// Which schema: `descriptor` (connector descriptors) or `options` (agent options).
        #[arg(value_parser = ["descriptor", "options"])]
        which: String,
    },
    /// Write the JSON Schemas of the extraction output (one per record type and the
    /// manifest) into a folder.
    OutputSchemas {
        /// Folder to write into.
        #[arg(default_value = "crates/metadata-extract/output-format")]
        out: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct RenderArgs {
    /// Folder holding one sub-folder per connector, each with a connector.yaml.
    #[arg(long, default_value = "connectors")]
    connectors: PathBuf,
    /// Agent options (YAML). Without it, the defaults (or, with a chart, the chart's
    /// `agent:` values).
    #[arg(long, conflicts_with_all = ["chart", "values"])]
    options: Option<PathBuf>,
    /// Overlay applied after compilation; repeat for several, applied in order.
    #[arg(long = "overlay")]
    overlays: Vec<PathBuf>,
    /// Output folder. Default: `workflow-templates`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Helm chart to render into as well: the objects go to `<chart>/files/argo/`, compiled
    /// from the `agent:` section of `<chart>/values.yaml` merged with each --values file,
    /// and the agent options' schema into `<chart>/values.schema.json`.
    /// Default, when neither --out nor --options is given: `charts/outpost` if it exists.
    #[arg(long, conflicts_with = "no_chart")]
    chart: Option<PathBuf>,
    /// Helm values file whose `agent:` section overrides the chart's (as `helm install -f`);
    /// repeat for several, applied in order.
    #[arg(long = "values")]
    values: Vec<PathBuf>,
    /// Render only the output folder, not the default chart.
    #[arg(long)]
    no_chart: bool,
    /// Compare with the output folder (and the chart) instead of writing; exit 1 with a diff
    /// when stale.
    #[arg(long)]
    check: bool,
}

/// The chart rendered into when `outpost render` runs in the repository without --out.
const DEFAULT_CHART: &str = "charts/outpost";
/// The output folder when --out is not given.
const DEFAULT_OUT: &str = "workflow-templates";

/// Parses the process's arguments and runs the subcommand they name.
pub fn main() -> ExitCode {
    execute(Cli::parse())
}

/// Runs a parsed command line; the exit code is the process's.
pub fn execute(cli: Cli) -> ExitCode {
    init_logging(cli.log_format, cli.quiet);
    let show_progress = !cli.quiet && cli.log_format == LogFormat::Text;
    let result = match cli.command {
        Command::Extract(args) => return extract::run(args, show_progress),
        Command::Upload(args) => return upload::run(args, show_progress),
        Command::Run(args) => return run::run(args, cli.quiet, show_progress),
        Command::Orchestrate(args) => return agent::orchestrate(args),
        Command::Heartbeat(args) => return agent::heartbeat(args),
        Command::Report(args) => return agent::report(args),
        Command::ControlPlane(command) => return agent::control_plane(command),
        Command::Render(args) => render(&args),
        Command::OutputSchemas { out } => (|| {
            std::fs::create_dir_all(&out)?;
            for (name, text) in metadata_extract::json_schemas() {
                std::fs::write(out.join(name), text)?;
            }
            Ok(ExitCode::SUCCESS)
        })(),
        Command::Schema { which } => {
            print!("{}", schema(&which));
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_INPUT)
        }
    }
}

fn schema(which: &str) -> String {
    match which {
        "options" => {
            let mut text = serde_json::to_string_pretty(&schemars::schema_for!(AgentOptions))
                .expect("schema is JSON");
            text.push('\n');
            text
        }
        _ => connector_descriptor::json_schema(),
    }
}

/// The chart a render writes into, if any: --chart, or in the repository (no --out, no
/// --options) `charts/outpost` when it exists.
fn chart_dir(args: &RenderArgs) -> anyhow::Result<Option<PathBuf>> {
    if let Some(chart) = &args.chart {
        return Ok(Some(chart.clone()));
    }
    let repository = args.out.is_none() && args.options.is_none() && !args.no_chart;
    let default = PathBuf::from(DEFAULT_CHART);
    if repository && default.join("Chart.yaml").is_file() {
        return Ok(Some(default));
    }
    anyhow::ensure!(
        args.values.is_empty(),
        "--values needs a chart: pass --chart (no chart at {DEFAULT_CHART})"
    );
    Ok(None)
}

fn render(args: &RenderArgs) -> anyhow::Result<ExitCode> {
    let descriptors = files::read_connectors(&args.connectors)?;
    anyhow::ensure!(
        !descriptors.is_empty(),
        "no connector descriptors found under {}",
        args.connectors.display()
    );
    for descriptor in descriptors.iter().filter(|d| d.local_only) {
        eprintln!(
            "{}: connector `{}` is localOnly: no WorkflowTemplate is rendered for it; run it with `outpost run --connector {}`",
            descriptor.file(),
            descriptor.name(),
            descriptor.name()
        );
    }
    let chart = chart_dir(args)?;
    let chart_values = match &chart {
        Some(chart) => Some(files::read_chart_values(chart, &args.values)?),
        None => None,
    };
    let (options, options_source) = match (&chart_values, &args.options) {
        (Some(values), _) => (values.options.clone(), values.source.clone()),
        (None, Some(path)) => (files::read_options(path)?, files::display_path(path)),
        (None, None) => (AgentOptions::default(), "defaults".to_owned()),
    };
    let overlays = args
        .overlays
        .iter()
        .map(|p| files::read_overlay(p))
        .collect::<Result<Vec<_>, _>>()?;
    let rendered = workflow_compiler::render(RenderInput {
        descriptors: &descriptors,
        options: &options,
        options_source: &options_source,
        overlays: &overlays,
    })?;
    // Each output: its folder, its files, and how the folder is read and written.
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_OUT));
    let mut outputs = vec![(out, rendered.clone(), false)];
    // The chart's values schema, whose `agent` part is the options' schema.
    let mut schema_file = None;
    if let (Some(chart), Some(values)) = (&chart, &chart_values) {
        outputs.push((
            chart.join(chart::CHART_ARGO_DIR),
            chart::chart_files(&rendered, &values.agent),
            true,
        ));
        let path = chart.join(chart::VALUES_SCHEMA_FILE);
        let existing = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let fresh = chart::values_schema(&existing, &files::display_path(&path))?;
        schema_file = Some((path, existing, fresh));
    }
    if args.check {
        let mut stale_outputs = 0;
        if let Some((path, existing, fresh)) = &schema_file {
            let name = chart::VALUES_SCHEMA_FILE.to_owned();
            let committed = std::collections::BTreeMap::from([(name.clone(), existing.clone())]);
            let fresh = [workflow_compiler::RenderedFile {
                name,
                contents: fresh.clone(),
            }];
            let stale = workflow_compiler::staleness(&committed, &fresh);
            for difference in &stale {
                eprintln!("{difference}");
            }
            if !stale.is_empty() {
                stale_outputs += 1;
                eprintln!(
                    "{}: stale; run `outpost render` and commit the result",
                    path.display()
                );
            }
        }
        for (dir, fresh, is_chart) in &outputs {
            let committed = if *is_chart {
                files::read_chart_dir(dir)?
            } else {
                files::read_output_dir(dir)?
            };
            let stale = workflow_compiler::staleness(&committed, fresh);
            if stale.is_empty() {
                eprintln!("{}: {} files up to date", dir.display(), fresh.len());
                continue;
            }
            stale_outputs += 1;
            for difference in &stale {
                eprintln!("{difference}");
            }
            eprintln!(
                "{}: {} of {} files stale; run `outpost render` and commit the result",
                dir.display(),
                stale.len(),
                fresh.len()
            );
        }
        return Ok(if stale_outputs == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_STALE)
        });
    }
    for (dir, fresh, is_chart) in &outputs {
        if *is_chart {
            files::write_chart_dir(dir, fresh)
        } else {
            files::write_output_dir(dir, fresh)
        }
        .with_context(|| format!("writing {}", dir.display()))?;
        eprintln!("{}: wrote {} files", dir.display(), fresh.len());
    }
    if let Some((path, existing, fresh)) = &schema_file
        && existing != fresh
    {
        std::fs::write(path, fresh).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("{}: updated", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The runtime of `upload` and `run`: two workers (uploads overlap network waits with
/// hashing on the blocking pool). On failure, the message is printed and exit code 70
/// (internal software error) returned.
fn delivery_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| {
            eprintln!("error: cannot start the async runtime: {error}");
            ExitCode::from(70)
        })
}

/// Structured logs on stderr: JSON with `--log-format json` (or `OUTPOST_LOG_FORMAT=json`),
/// text otherwise, coloured only on a terminal and without `NO_COLOR`. The level comes from
/// `RUST_LOG` (default `info`, `warn` with `--quiet`).
fn init_logging(format: LogFormat, quiet: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = if quiet { "warn" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
