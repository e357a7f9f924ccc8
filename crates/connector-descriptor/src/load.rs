//! Where descriptors come from: the ones built into the binary, or a folder of
//! `<name>/connector.yaml`. The only module of this crate that reads files; everything else
//! takes text.

use std::path::{Path, PathBuf};

use crate::{DescriptorError, Diagnostic, Diagnostics, ValidatedDescriptor};

/// File name of a descriptor inside its connector's folder.
pub const DESCRIPTOR_FILE: &str = "connector.yaml";

/// The descriptors shipped with the binary, as `(file, text)`. The image runs exactly these,
/// so a control plane can never make a step run a connector the image does not declare.
/// A test checks this list against `connectors/`, so a new connector cannot be left out.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "connectors/mysql/connector.yaml",
        include_str!("../../../connectors/mysql/connector.yaml"),
    ),
    (
        "connectors/postgres/connector.yaml",
        include_str!("../../../connectors/postgres/connector.yaml"),
    ),
    (
        "connectors/snowflake/connector.yaml",
        include_str!("../../../connectors/snowflake/connector.yaml"),
    ),
    (
        "connectors/sqlite/connector.yaml",
        include_str!("../../../connectors/sqlite/connector.yaml"),
    ),
    (
        "connectors/tableau/connector.yaml",
        include_str!("../../../connectors/tableau/connector.yaml"),
    ),
];

/// Why descriptors could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The folder or a descriptor file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
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
    /// No descriptor is named so.
    #[error("unknown connector `{name}` (known: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names there are, comma-separated.
        known: String,
    },
}

/// An unknown connector or a bad descriptor folder: the command line named it (an agent
/// whose own folder is bad maps it to a configuration error itself).
impl outpost_core::ExitCoded for LoadError {
    fn exit_code(&self) -> outpost_core::ExitCode {
        outpost_core::ExitCode::Usage
    }
}

/// The built-in descriptors, parsed. They are validated by the test suite, so an error here
/// means a broken build.
pub fn builtin() -> Result<Vec<ValidatedDescriptor>, LoadError> {
    let (descriptors, errors): (Vec<_>, Vec<_>) = BUILTIN
        .iter()
        .map(|(file, text)| crate::parse(file, text))
        .partition(Result::is_ok);
    if errors.is_empty() {
        Ok(descriptors.into_iter().filter_map(Result::ok).collect())
    } else {
        Err(LoadError::Descriptors {
            errors: errors.into_iter().filter_map(Result::err).collect(),
        })
    }
}

/// The descriptors in `dir` when given, else the built-in ones.
pub fn from_dir_or_builtin(dir: Option<&Path>) -> Result<Vec<ValidatedDescriptor>, LoadError> {
    match dir {
        Some(dir) => read_dir(dir),
        None => builtin(),
    }
}

/// The descriptor named `name` among `descriptors`.
pub fn find(
    descriptors: &[ValidatedDescriptor],
    name: &str,
) -> Result<ValidatedDescriptor, LoadError> {
    descriptors
        .iter()
        .find(|d| d.name() == name)
        .cloned()
        .ok_or_else(|| LoadError::Unknown {
            name: name.to_owned(),
            known: descriptors
                .iter()
                .map(|d| d.name())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Reads every `<dir>/<name>/connector.yaml`, sorted by folder name. Every invalid
/// descriptor is reported, not only the first. A descriptor whose `name` differs from its
/// folder's is an error.
///
/// Descriptors are named `<dir's own name>/<name>/connector.yaml` (`connectors/postgres/…`)
/// in diagnostics and generated headers, whatever the working directory, so renders from
/// anywhere give the same bytes.
pub fn read_dir(dir: &Path) -> Result<Vec<ValidatedDescriptor>, LoadError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| LoadError::Io { path, source }
    };
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
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
        return Err(LoadError::Descriptors { errors: missing });
    }
    let inputs = folders
        .iter()
        .map(|folder| {
            let path = folder.join(DESCRIPTOR_FILE);
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            Ok((folder, label(dir, folder), text))
        })
        .collect::<Result<Vec<_>, LoadError>>()?;
    // Parsing dominates a render of many connectors; descriptors are independent.
    let parsed = crate::parallel::map(&inputs, |(folder, file, text)| {
        let descriptor = crate::parse(file, text)?;
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
        Err(LoadError::Descriptors { errors })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The built-in list is `connectors/` exactly: a connector added there and not here
    /// would be rendered into a template whose image cannot run it.
    #[test]
    fn builtin_descriptors_are_the_connectors_folder() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../connectors");
        let on_disk: Vec<String> = read_dir(&dir)
            .expect("the shipped connectors")
            .iter()
            .map(|d| d.name().to_owned())
            .collect();
        let built_in: Vec<String> = builtin()
            .expect("the built-in connectors")
            .iter()
            .map(|d| d.name().to_owned())
            .collect();
        assert_eq!(built_in, on_disk);
    }
}
