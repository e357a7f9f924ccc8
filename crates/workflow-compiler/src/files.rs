//! The edge of the compiler: reading descriptors, options and overlays from disk, and reading
//! or writing the output folder. Everything else in this crate is pure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use connector_descriptor::{DescriptorError, Diagnostic, Diagnostics, ValidatedDescriptor};

use crate::{AgentOptions, CompileError, Overlay, RenderedFile};

/// File name of a descriptor inside its connector's folder.
pub const DESCRIPTOR_FILE: &str = "connector.yaml";

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
    /// One or more descriptors are invalid; every problem of every descriptor is listed.
    #[error("{}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Descriptors {
        /// One error per bad descriptor.
        errors: Vec<DescriptorError>,
    },
    /// The options or an overlay are invalid.
    #[error(transparent)]
    Compile(#[from] CompileError),
}

fn read(path: &Path) -> Result<String, FilesError> {
    std::fs::read_to_string(path).map_err(|source| FilesError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })
}

/// A path as shown in diagnostics: relative to the working directory when it is inside it.
pub fn display_path(path: &Path) -> String {
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_owned));
    shown
        .unwrap_or_else(|| path.to_owned())
        .display()
        .to_string()
}

/// Reads every `<dir>/<name>/connector.yaml`, sorted by folder name. Every invalid
/// descriptor is reported, not only the first. A descriptor whose `name` differs from its
/// folder's is an error.
///
/// Descriptors are named `<dir's own name>/<name>/connector.yaml` (`connectors/postgres/…`)
/// in diagnostics and generated headers, whatever the working directory, so renders from
/// anywhere give the same bytes.
pub fn read_connectors(dir: &Path) -> Result<Vec<ValidatedDescriptor>, FilesError> {
    let io = |source| FilesError::Io {
        action: "read",
        path: dir.to_owned(),
        source,
    };
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_dir())
        .collect();
    folders.sort();
    // Every folder is a connector: one without its descriptor (say, `connector.yml`) is an
    // error, not something to skip without a word.
    let missing: Vec<DescriptorError> = folders
        .iter()
        .filter(|folder| !folder.join(DESCRIPTOR_FILE).is_file())
        .map(|folder| {
            let file = label(dir, folder);
            let diagnostic = Diagnostic::new(
                &file,
                serde_saphyr::Location::UNKNOWN,
                "",
                format!(
                    "missing: every folder under {} holds one connector's `{DESCRIPTOR_FILE}`",
                    dir.display()
                ),
            );
            DescriptorError::Invalid {
                file,
                diagnostics: Diagnostics(vec![diagnostic]),
            }
        })
        .collect();
    if !missing.is_empty() {
        return Err(FilesError::Descriptors { errors: missing });
    }
    let inputs = folders
        .iter()
        .map(|folder| {
            Ok((
                folder,
                label(dir, folder),
                read(&folder.join(DESCRIPTOR_FILE))?,
            ))
        })
        .collect::<Result<Vec<_>, FilesError>>()?;
    // Parsing dominates a render of many connectors; descriptors are independent.
    let parsed = crate::parallel::map(&inputs, |(folder, file, text)| {
        let descriptor = connector_descriptor::parse(file, text)?;
        let folder_name = folder
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if descriptor.name() == folder_name {
            return Ok(descriptor);
        }
        let diagnostic = Diagnostic::new(
            file,
            descriptor.name.referenced,
            "name",
            format!(
                "`{}` differs from its folder name `{folder_name}`",
                descriptor.name()
            ),
        );
        Err(DescriptorError::Invalid {
            file: file.clone(),
            diagnostics: Diagnostics(vec![diagnostic]),
        })
    });
    let (mut descriptors, mut errors) = (Vec::new(), Vec::new());
    for result in parsed {
        match result {
            Ok(descriptor) => descriptors.push(descriptor),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(descriptors)
    } else {
        Err(FilesError::Descriptors { errors })
    }
}

fn label(dir: &Path, folder: &Path) -> String {
    let base = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()));
    let folder_name = folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match base {
        Some(base) => format!("{base}/{folder_name}/{DESCRIPTOR_FILE}"),
        None => display_path(&folder.join(DESCRIPTOR_FILE)),
    }
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
