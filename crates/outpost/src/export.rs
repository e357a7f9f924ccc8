//! `outpost export`: a run in a catalog's own format.

use std::path::PathBuf;

use catalog_export::Format;
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
    #[command(flatten)]
    catalog: crate::flags::CatalogFlags,
}

pub fn export(args: ExportArgs, quiet: bool) -> Result<ExitCode, Failure> {
    let options = args.catalog.options();
    let (file, summary) = agent::steps::export(&args.from, args.format, &options, &args.out)?;
    if !quiet {
        let objects = args.format.objects();
        println!("{}: {} {objects}", file.display(), summary.written);
    }
    Ok(ExitCode::Success)
}
