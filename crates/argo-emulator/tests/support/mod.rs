#![allow(dead_code, missing_docs)]

use std::path::{Path, PathBuf};

use argo_emulator::Emulator;
use serde_json::Value;

/// A YAML manifest as JSON.
pub fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("valid YAML")
}

/// An emulator with `sh` and a 1000× clock, keeping pod folders in `dir`.
pub fn emulator(dir: &Path) -> Emulator {
    Emulator::new(dir)
        .with_binary("sh", "/bin/sh")
        .time_scale(1000.0)
}

/// The real python interpreter (not a pyenv shim, which needs the environment the emulator clears).
pub fn python() -> Option<PathBuf> {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (out.status.success() && path.is_file()).then_some(path)
}

/// A Workflow with one template (`main`, the entrypoint) given as YAML lines of the template.
pub fn workflow(name: &str, template: &str) -> Value {
    let template = template
        .lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    yaml(&format!(
        "metadata:\n  name: {name}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n{template}\n"
    ))
}
