//! `outpost`: the one binary whose subcommands are the container entrypoints of every Argo
//! step, plus the tools that generate what Argo CD syncs.
//!
//! A library so that tests parse argument vectors with the very parser the binary uses
//! ([`Cli`]): every argv a rendered WorkflowTemplate passes must be one it accepts.
//!
//! Thin by rule: each subcommand parses its flags into the owning library's settings, calls
//! one library function, and `?` maps the library's typed error to a `Failure` (each
//! library error knows its exit code: `outpost_core::ExitCoded`); [`execute`] has
//! `agent::console` print that once, redacted, with its cause chain, and exits with its code.
//! Logs, progress and failures are shown by `agent::console`; what is left here is the
//! wording of usage errors and of a few one-line results.

use std::process::ExitCode as ProcessExit;

use clap::{Parser, Subcommand};
use outpost_core::ExitCode;

mod agent;
mod control_plane;
mod export;
mod extract;
mod flags;
mod render;
mod run;
mod upload;
mod verify;

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

use ExitCode::{
    Config, Data, Input, Io, NoInput, NoPermission, Protocol, Software, Stale, Success, Temporary,
    Usage,
};
use outpost_core::exit::help_section;

#[derive(Subcommand, Debug)]
enum Command {
    /// Extract a source's metadata into an output folder (the connector pod's first step):
    /// one zstd-compressed NDJSON stream per entity kind and, last, manifest.json.
    #[command(after_help = help_section(&[Usage, Software, Io, Temporary, NoPermission, Config]))]
    Extract(extract::ExtractArgs),
    /// Deliver an extracted run (the connector pod's second step): bucket relay or direct
    /// ingestion, each file checked against the manifest's SHA-256, the manifest last.
    ///
    /// Re-running is safe: an identical delivery is a no-op, and leftovers of a different
    /// earlier attempt are removed before the new manifest is written.
    #[command(after_help = help_section(&[Usage, Data, NoInput, Temporary, Protocol, NoPermission, Config]))]
    Upload(upload::UploadArgs),
    /// Run one job end to end on this machine, no Kubernetes: extract, then deliver.
    ///
    /// With no arguments, extracts the bundled sample catalog (SQLite) into
    /// ./outpost-output/ as a local bucket. With --connector, any source, delivered to any
    /// bucket (--to) or through pre-signed URLs (--direct --urls). The ids default to
    /// connection `sample` (else `local`), job `local`, and the start time as run id
    /// (`20261126T051245Z`). With --control-plane, polls a control plane and runs its jobs
    /// (local mode).
    #[command(after_help = help_section(&[Usage, Data, NoInput, Software, Io, Temporary, Protocol, NoPermission, Config]))]
    Run(Box<run::RunArgs>),
    /// One orchestrator tick (the orchestrator CronWorkflow's step): poll the control plane,
    /// admit each job against its connector descriptor, submit a Workflow that only
    /// references the connector's WorkflowTemplate, report what happened.
    ///
    /// Jobs that ask for anything a descriptor does not declare are rejected with every
    /// reason, never submitted. Exit 75 also when jobs are left for the next tick; 78 also
    /// when Argo would run Workflows with inline templates (no
    /// `workflowRestrictions.templateReferencing: Strict` or `Secure`): nothing is claimed
    /// then, unless --insecure-allow-unrestricted-templates.
    #[command(after_help = help_section(&[Usage, Data, Temporary, Protocol, NoPermission, Config]))]
    Orchestrate(agent::OrchestrateArgs),
    /// Tell the control plane the agent is alive: version, Kubernetes and Argo
    /// reachability, running Workflows, the last successful poll. Also logs whether Argo runs
    /// only Workflows that reference a WorkflowTemplate (a warning when not).
    #[command(after_help = help_section(&[Usage, Temporary, Protocol, NoPermission, Config]))]
    Heartbeat(agent::HeartbeatArgs),
    /// Report a run's final status and ship its logs, secrets redacted (each connector
    /// Workflow's exit handler).
    #[command(after_help = help_section(&[Usage, Temporary, Protocol, NoPermission, Config]))]
    Report(agent::ReportArgs),
    /// Check a run against the agent's public key: the manifest's signature, then every file
    /// it lists (present, size, SHA-256). Exits 65 with the reason on any difference.
    ///
    /// The run is a folder, or a delivered run's bucket URL, read back first.
    #[command(after_help = help_section(&[Usage, Data, NoInput, Io, Temporary, NoPermission, Config]))]
    Verify(verify::VerifyArgs),
    /// Make an Ed25519 key pair: the private seed goes to a file (mode 0600), the public key
    /// is printed. For signing manifests (`extract --manifest-signing-key`, `verify --key`)
    /// or jobs (`control-plane serve --signing-key`, `controlPlane.jobSigningKey`).
    #[command(after_help = help_section(&[Usage, Config]))]
    Keygen(verify::KeygenArgs),
    /// Write a run in a catalog's own format: DataHub's metadata change proposals (for
    /// `datahub ingest`'s `file` source), or OpenLineage dataset events (JSON Lines).
    #[command(after_help = help_section(&[Usage, Data, NoInput, Io]))]
    Export(export::ExportArgs),
    /// The reference control plane: serve it, queue jobs on it, print its API document.
    #[command(subcommand)]
    ControlPlane(control_plane::ControlPlaneCommand),
    /// Compile connector descriptors into Argo WorkflowTemplates and CronWorkflows.
    ///
    /// One file per object, each with a header naming its inputs, plus a kustomization.yaml;
    /// files no longer produced are deleted. With a Helm chart, the same objects go into it
    /// too, compiled from its `agent:` values. With --check, writes nothing and exits 1 with
    /// a diff when stale.
    #[command(after_help = help_section(&[Stale, Input, Usage]))]
    Render(render::RenderArgs),
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
        out: std::path::PathBuf,
    },
}

/// Parses the process's arguments and runs the subcommand they name. A command line clap
/// rejects exits 64 (`EX_USAGE`), as the help says; `--help` and `--version` exit 0.
pub fn main() -> ProcessExit {
    match Cli::try_parse() {
        Ok(cli) => execute(cli),
        Err(error) => {
            let _ = error.print();
            match error.use_stderr() {
                true => Usage.into(),
                false => ProcessExit::SUCCESS,
            }
        }
    }
}

/// Runs a parsed command line; the exit code is the process's.
pub fn execute(cli: Cli) -> ProcessExit {
    ::agent::console::init_logging(cli.log_format == LogFormat::Json, cli.quiet);
    // Every HTTP client (delivery, ingestion, the control-plane client, the Kubernetes
    // client) needs rustls's provider chosen once per process, before the first one is built.
    delivery::install_crypto_provider();
    let show = !cli.quiet && cli.log_format == LogFormat::Text;
    let result = match cli.command {
        Command::Extract(args) => extract::run(args, show),
        Command::Upload(args) => upload::run(args, show),
        Command::Run(args) => run::run(*args, cli.quiet, show),
        Command::Orchestrate(args) => agent::orchestrate(args),
        Command::Heartbeat(args) => agent::heartbeat(args),
        Command::Report(args) => agent::report(args),
        Command::ControlPlane(command) => control_plane::run(command),
        Command::Verify(args) => verify::verify(&args),
        Command::Keygen(args) => verify::keygen(&args),
        Command::Export(args) => export::export(args, cli.quiet),
        Command::Render(args) => render::run(&args),
        Command::OutputSchemas { out } => render::output_schemas(&out),
        Command::Schema { which } => {
            print!("{}", workflow_compiler::files::schema(&which));
            Ok(Success)
        }
    };
    result
        .unwrap_or_else(|failure| ::agent::console::show(&failure))
        .into()
}
