//! `outpost export`: a run in a catalog's own format.

use std::path::PathBuf;

use catalog_export::{Format, Options};
use outpost_core::{ExitCode, Failure};

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The run's folder (the extract step's output, or a local run).
    #[arg(long)]
    from: PathBuf,
    /// `datahub`: metadata change proposals for `datahub ingest`'s `file` source;
    /// `openlineage`: one OpenLineage DatasetEvent per table, as JSON Lines.
    #[arg(long, value_parser = |s: &str| s.parse::<Format>())]
    format: Format,
    /// The file to write (replaced whole), or a folder that gets `datahub.json` or
    /// `openlineage.jsonl`.
    #[arg(long)]
    out: PathBuf,
    /// DataHub's environment, as the DataHub source's `env`.
    #[arg(long, default_value = catalog_export::datahub::DEFAULT_ENV)]
    env: String,
    /// DataHub's platform instance, as the DataHub source's `platform_instance`.
    #[arg(long)]
    platform_instance: Option<String>,
    /// OpenLineage's dataset namespace, as other producers name the server
    /// (`postgres://db.example.com:5432`); without it, `<platform>://<connection>`.
    #[arg(long)]
    namespace: Option<String>,
    /// For a BI site's OpenLineage column lineage: the namespace of the database server a
    /// platform's tables are on (`postgres=postgres://db.example.com:5432`); repeat per
    /// platform. Without it, `<platform>://<database>`.
    #[arg(long, value_name = "PLATFORM=NAMESPACE", value_parser = crate::extract::name_value)]
    upstream_namespace: Vec<(String, String)>,
}

pub fn export(args: ExportArgs, quiet: bool) -> Result<ExitCode, Failure> {
    let options = Options {
        env: Some(args.env),
        platform_instance: args.platform_instance,
        namespace: args.namespace,
        upstream_namespaces: args.upstream_namespace,
    };
    let (file, summary) = agent::steps::export(&args.from, args.format, &options, &args.out)?;
    let what = match args.format {
        Format::DataHub => "proposals",
        Format::OpenLineage => "events",
    };
    if !quiet {
        println!("{}: {} {what}", file.display(), summary.written);
    }
    Ok(ExitCode::Success)
}
