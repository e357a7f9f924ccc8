//! `outpost render`, `schema` and `output-schemas`: the generated files Argo CD syncs and
//! editors read.

use std::path::{Path, PathBuf};

use outpost_core::ExitCode;
use workflow_compiler::files::{self, GenerateRequest};

use outpost_core::Failure;
/// The output folder when --out is not given.
const DEFAULT_OUT: &str = "workflow-templates";

#[derive(clap::Args, Debug)]
pub struct RenderArgs {
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

pub fn run(args: &RenderArgs) -> Result<ExitCode, Failure> {
    // In the repository (no --out, no --options), the chart is rendered too when it exists.
    let in_repository = args.out.is_none() && args.options.is_none() && !args.no_chart;
    let request = GenerateRequest {
        connectors: args.connectors.clone(),
        options: args.options.clone(),
        overlays: args.overlays.clone(),
        out: (args.out.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_OUT)),
        chart: files::chart_to_render(args.chart.clone(), in_repository, &args.values)?,
        values: args.values.clone(),
        check: args.check,
    };
    let fresh = files::generate(&request, &mut |line| eprintln!("{line}"))?;
    Ok(if fresh {
        ExitCode::Success
    } else {
        ExitCode::Stale
    })
}

/// Writes the output format's JSON Schemas into `out`.
pub fn output_schemas(out: &Path) -> Result<ExitCode, Failure> {
    files::write_output_schemas(out)?;
    Ok(ExitCode::Success)
}
