//! The edge of the compiler: reading descriptors, options and overlays from disk, and reading
//! or writing the output folder. Everything else in this crate is pure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use connector_descriptor::load::display_path;

use crate::{AgentOptions, CompileError, Overlay, RenderedFile};

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// A file or folder could not be read or written.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// `read`, `write` or `delete`.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The descriptors could not be loaded.
    #[error(transparent)]
    Descriptors(#[from] connector_descriptor::load::LoadError),
    /// The options or an overlay are invalid.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// Values files were given, but no chart to apply them to.
    #[error("--values needs a chart: pass --chart (no chart at {DEFAULT_CHART})")]
    NoChart,
}

/// A descriptor, options or overlay that cannot be used, or a file that cannot be read or
/// written: the generator's input.
impl outpost_core::ExitCoded for FilesError {
    fn exit_code(&self) -> outpost_core::ExitCode {
        outpost_core::ExitCode::Input
    }
}

/// The chart `outpost render` renders into when run in the repository without --out.
pub const DEFAULT_CHART: &str = "charts/outpost";

/// The chart to render into: `chart` when given; else, in the repository (`in_repository`:
/// no output folder or options named, the chart not refused), [`DEFAULT_CHART`] when it
/// exists. Values files without a chart are an error: they would apply to nothing.
pub fn chart_to_render(
    chart: Option<PathBuf>,
    in_repository: bool,
    values: &[PathBuf],
) -> Result<Option<PathBuf>, FilesError> {
    let default = Path::new(DEFAULT_CHART);
    match chart {
        Some(chart) => Ok(Some(chart)),
        None if in_repository && default.join("Chart.yaml").is_file() => {
            Ok(Some(default.to_owned()))
        }
        None if !values.is_empty() => Err(FilesError::NoChart),
        None => Ok(None),
    }
}

/// The JSON Schema `outpost schema` prints: `options` (agent options), else connector
/// descriptors.
pub fn schema(which: &str) -> String {
    match which {
        "options" => options_schema(),
        _ => connector_descriptor::json_schema(),
    }
}

/// The JSON Schema of the agent options (`outpost schema options`).
pub fn options_schema() -> String {
    let schema = schemars::schema_for!(AgentOptions);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema is always JSON");
    text.push('\n');
    text
}

/// Writes the output format's JSON Schemas (one per record type and the manifest) into `out`.
pub fn write_output_schemas(out: &Path) -> Result<(), FilesError> {
    let io = |source| FilesError::Io {
        action: "write",
        path: out.to_owned(),
        source,
    };
    std::fs::create_dir_all(out).map_err(io)?;
    for (name, text) in outpost_core::output::json_schemas() {
        std::fs::write(out.join(name), text).map_err(io)?;
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, FilesError> {
    std::fs::read_to_string(path).map_err(|source| FilesError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })
}

/// Reads agent options from a YAML file (unknown fields are errors).
pub fn read_options(path: &Path) -> Result<AgentOptions, FilesError> {
    let file = display_path(path);
    let text = read(path)?;
    connector_descriptor::yaml::from_str(&file, &text).map_err(|diagnostic| {
        FilesError::Compile(CompileError::Options {
            source_name: file.clone(),
            problems: vec![diagnostic.to_string()],
        })
    })
}

/// Reads an overlay file.
pub fn read_overlay(path: &Path) -> Result<Overlay, FilesError> {
    let text = read(path)?;
    Ok(Overlay::parse(&display_path(path), &text)?)
}

/// A chart's values files read for its `agent:` section: the chart's `values.yaml` first,
/// then each of `extra` in order, merged the way Helm merges them.
#[derive(Clone, Debug)]
pub struct ChartValues {
    /// The merged `agent:` section, as Helm will see it in `.Values.agent`.
    pub agent: serde_json::Value,
    /// The same, read as agent options.
    pub options: AgentOptions,
    /// The files, for headers (`charts/outpost/values.yaml + site.yaml: agent`), or
    /// `defaults` when the options are the defaults.
    pub source: String,
}

/// Reads `<chart>/values.yaml` and every file of `extra` (Helm values files) and merges their
/// `agent:` sections into agent options; the rest of each file is the chart's own business.
pub fn read_chart_values(chart: &Path, extra: &[PathBuf]) -> Result<ChartValues, FilesError> {
    let paths: Vec<PathBuf> = std::iter::once(chart.join("values.yaml"))
        .chain(extra.iter().cloned())
        .collect();
    let source = format!(
        "{}: {}",
        paths
            .iter()
            .map(|p| display_path(p))
            .collect::<Vec<_>>()
            .join(" + "),
        crate::chart::AGENT_KEY
    );
    let mut values = Vec::new();
    for path in &paths {
        let file = display_path(path);
        let text = read(path)?;
        let value: serde_json::Value =
            connector_descriptor::yaml::from_str(&file, &text).map_err(|diagnostic| {
                FilesError::Compile(CompileError::Options {
                    source_name: file.clone(),
                    problems: vec![diagnostic.to_string()],
                })
            })?;
        values.push(value);
    }
    let (agent, options) = crate::chart::agent_options(&values, &source)?;
    // Options equal to the defaults are labelled as such wherever they were read from, so
    // the default render is the same bytes through the chart as without it.
    let source = if options == AgentOptions::default() {
        "defaults".to_owned()
    } else {
        source
    };
    Ok(ChartValues {
        agent,
        options,
        source,
    })
}

/// The generated files currently in `dir` (every `*.yaml`), by name. A missing folder is empty.
pub fn read_output_dir(dir: &Path) -> Result<BTreeMap<String, String>, FilesError> {
    read_generated(dir, &["yaml"])
}

/// The generated files currently in a chart's [`crate::chart::CHART_ARGO_DIR`] (every
/// `*.yaml` and `*.json`), by name. A missing folder is empty.
pub fn read_chart_dir(dir: &Path) -> Result<BTreeMap<String, String>, FilesError> {
    read_generated(dir, &["yaml", "json"])
}

/// Writes a chart's generated files into `dir` (its `files/argo`), deleting `*.yaml` and
/// `*.json` files the render no longer produces.
pub fn write_chart_dir(dir: &Path, files: &[RenderedFile]) -> Result<(), FilesError> {
    write_generated(dir, files, &["yaml", "json"])
}

fn read_generated(dir: &Path, extensions: &[&str]) -> Result<BTreeMap<String, String>, FilesError> {
    let mut files = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(source) => {
            return Err(FilesError::Io {
                action: "read",
                path: dir.to_owned(),
                source,
            });
        }
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path
            .extension()
            .is_some_and(|e| extensions.iter().any(|x| e == *x))
            && let Some(name) = path.file_name().and_then(|n| n.to_str())
        {
            files.insert(name.to_owned(), read(&path)?);
        }
    }
    Ok(files)
}

/// Writes the rendered files into `dir` and deletes `*.yaml` files the render no longer
/// produces, so the folder is exactly the render.
pub fn write_output_dir(dir: &Path, files: &[RenderedFile]) -> Result<(), FilesError> {
    write_generated(dir, files, &["yaml"])
}

fn write_generated(
    dir: &Path,
    files: &[RenderedFile],
    extensions: &[&str],
) -> Result<(), FilesError> {
    std::fs::create_dir_all(dir).map_err(|source| FilesError::Io {
        action: "write",
        path: dir.to_owned(),
        source,
    })?;
    for stale in read_generated(dir, extensions)?.keys() {
        if !files.iter().any(|f| &f.name == stale) {
            let path = dir.join(stale);
            std::fs::remove_file(&path).map_err(|source| FilesError::Io {
                action: "delete",
                path,
                source,
            })?;
        }
    }
    for file in files {
        let path = dir.join(&file.name);
        std::fs::write(&path, &file.contents).map_err(|source| FilesError::Io {
            action: "write",
            path,
            source,
        })?;
    }
    Ok(())
}

/// What `outpost render` is asked to do.
#[derive(Clone, Debug, Default)]
pub struct GenerateRequest {
    /// Folder holding one sub-folder per connector.
    pub connectors: PathBuf,
    /// Agent options file; without it, the chart's `agent:` values or the defaults.
    pub options: Option<PathBuf>,
    /// Overlays applied after compilation, in order.
    pub overlays: Vec<PathBuf>,
    /// Output folder.
    pub out: PathBuf,
    /// Helm chart rendered into as well.
    pub chart: Option<PathBuf>,
    /// Helm values files whose `agent:` sections override the chart's, in order.
    pub values: Vec<PathBuf>,
    /// Compare with what is on disk instead of writing.
    pub check: bool,
}

/// Renders the descriptors into the output folder (and the chart), or with `check` compares
/// what is committed with a fresh render. Every finding goes to `say`, a line each. Answers
/// whether everything was up to date (always true when writing).
pub fn generate(
    request: &GenerateRequest,
    say: &mut dyn FnMut(String),
) -> Result<bool, FilesError> {
    let descriptors = connector_descriptor::load::read_dir(&request.connectors)?;
    if descriptors.is_empty() {
        return Err(FilesError::Compile(CompileError::Options {
            source_name: display_path(&request.connectors),
            problems: vec!["no connector descriptors found".to_owned()],
        }));
    }
    for descriptor in descriptors.iter().filter(|d| d.local_only) {
        say(format!(
            "{}: connector `{}` is localOnly: no WorkflowTemplate is rendered for it; run it with `outpost run --connector {}`",
            descriptor.file(),
            descriptor.name(),
            descriptor.name()
        ));
    }
    let chart_values = match &request.chart {
        Some(chart) => Some(read_chart_values(chart, &request.values)?),
        None => None,
    };
    let (options, options_source) = match (&chart_values, &request.options) {
        (Some(values), _) => (values.options.clone(), values.source.clone()),
        (None, Some(path)) => (read_options(path)?, display_path(path)),
        (None, None) => (AgentOptions::default(), "defaults".to_owned()),
    };
    let overlays = request
        .overlays
        .iter()
        .map(|p| read_overlay(p))
        .collect::<Result<Vec<_>, _>>()?;
    let rendered = crate::render(crate::RenderInput {
        descriptors: &descriptors,
        options: &options,
        options_source: &options_source,
        overlays: &overlays,
    })?;
    // Each output: its folder, its files, and whether it is a chart's (read and written as
    // the chart keeps them).
    let mut outputs = vec![(request.out.clone(), rendered.clone(), false)];
    // The chart's values schema, whose `agent` part is the options' schema.
    let mut schema_file = None;
    if let (Some(chart), Some(values)) = (&request.chart, &chart_values) {
        outputs.push((
            chart.join(crate::chart::CHART_ARGO_DIR),
            crate::chart::chart_files(&rendered, &values.agent),
            true,
        ));
        let path = chart.join(crate::chart::VALUES_SCHEMA_FILE);
        let existing = read(&path)?;
        let fresh = crate::chart::values_schema(&existing, &display_path(&path))?;
        schema_file = Some((path, existing, fresh));
    }
    if request.check {
        let mut stale_outputs = 0;
        if let Some((path, existing, fresh)) = &schema_file {
            let name = crate::chart::VALUES_SCHEMA_FILE.to_owned();
            let committed = BTreeMap::from([(name.clone(), existing.clone())]);
            let fresh = [RenderedFile {
                name,
                contents: fresh.clone(),
            }];
            let stale = crate::staleness(&committed, &fresh);
            for difference in &stale {
                say(difference.to_string());
            }
            if !stale.is_empty() {
                stale_outputs += 1;
                say(format!(
                    "{}: stale; run `outpost render` and commit the result",
                    path.display()
                ));
            }
        }
        for (dir, fresh, is_chart) in &outputs {
            let committed = if *is_chart {
                read_chart_dir(dir)?
            } else {
                read_output_dir(dir)?
            };
            let stale = crate::staleness(&committed, fresh);
            if stale.is_empty() {
                say(format!(
                    "{}: {} files up to date",
                    dir.display(),
                    fresh.len()
                ));
                continue;
            }
            stale_outputs += 1;
            for difference in &stale {
                say(difference.to_string());
            }
            say(format!(
                "{}: {} of {} files stale; run `outpost render` and commit the result",
                dir.display(),
                stale.len(),
                fresh.len()
            ));
        }
        return Ok(stale_outputs == 0);
    }
    for (dir, fresh, is_chart) in &outputs {
        if *is_chart {
            write_chart_dir(dir, fresh)?;
        } else {
            write_output_dir(dir, fresh)?;
        }
        say(format!("{}: wrote {} files", dir.display(), fresh.len()));
    }
    if let Some((path, existing, fresh)) = &schema_file
        && existing != fresh
    {
        std::fs::write(path, fresh).map_err(|source| FilesError::Io {
            action: "write",
            path: path.clone(),
            source,
        })?;
        say(format!("{}: updated", path.display()));
    }
    Ok(true)
}
