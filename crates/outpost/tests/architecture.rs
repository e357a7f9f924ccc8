//! ARCHITECTURE.md's crate table is the rule: every workspace crate is listed, depends only on
//! the workspace crates its row allows (normal and build dependencies), and an I/O-free crate
//! pulls in no runtime, network client or database driver. Read from `cargo metadata`, so a
//! dependency added to any Cargo.toml is checked against the page.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Crates an I/O-free crate may not depend on, directly.
const IO_CRATES: &[&str] = &[
    "tokio",
    "reqwest",
    "hyper",
    "kube",
    "object_store",
    "rusqlite",
    "tokio-postgres",
    "mysql_async",
];

struct Row {
    io_free: bool,
    allowed: BTreeSet<String>,
}

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The table of ARCHITECTURE.md: `| crate | layer | I/O-free | may depend on |`.
fn table() -> BTreeMap<String, Row> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut rows = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(
            cells.len(),
            4,
            "ARCHITECTURE.md: a crate row has 4 cells: {line}"
        );
        let name = cells[0].trim_matches('`').to_owned();
        let allowed = cells[3]
            .split(',')
            .map(|c| c.trim().trim_matches('`').to_owned())
            .filter(|c| !c.is_empty())
            .collect();
        let io_free = match cells[2] {
            "yes" => true,
            "no" => false,
            other => panic!("ARCHITECTURE.md: I/O-free is `yes` or `no`, not `{other}`: {line}"),
        };
        rows.insert(name, Row { io_free, allowed });
    }
    rows
}

/// Each workspace crate's normal and build dependencies, by name.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version=1", "--no-deps", "--offline"])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let mut crates = BTreeMap::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("name").to_owned();
        let deps = package["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            // `kind` is null for normal dependencies, "build" or "dev" otherwise.
            .filter(|d| d["kind"].as_str() != Some("dev"))
            .map(|d| d["name"].as_str().expect("dependency name").to_owned())
            .collect();
        crates.insert(name, deps);
    }
    crates
}

#[test]
fn every_crate_depends_only_on_what_architecture_md_allows() {
    let table = table();
    let crates = dependencies();
    assert!(crates.len() >= 10, "the workspace's crates: {crates:?}");
    let listed: BTreeSet<&String> = table.keys().collect();
    let present: BTreeSet<&String> = crates.keys().collect();
    assert_eq!(
        listed, present,
        "ARCHITECTURE.md must list exactly the workspace's crates"
    );
    let mut problems = Vec::new();
    for (name, deps) in &crates {
        let row = &table[name];
        for dep in deps {
            let workspace = crates.contains_key(dep);
            if workspace && !row.allowed.contains(dep) {
                problems.push(format!(
                    "{name} depends on {dep}, which ARCHITECTURE.md does not allow"
                ));
            }
            if row.io_free && IO_CRATES.contains(&dep.as_str()) {
                problems.push(format!("{name} is I/O-free but depends on {dep}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The check can fail: a forbidden edge, as the binary's own dependencies would show it, is
/// caught by the same comparison.
#[test]
fn a_forbidden_dependency_would_be_caught() {
    let table = table();
    let delivery = &table["delivery"];
    assert!(!delivery.allowed.contains("metadata-extract"));
    assert!(!table["outpost-core"].allowed.iter().any(|_| true));
    assert!(table["workflow-compiler"].io_free);
    let crates = dependencies();
    assert!(
        crates["outpost"].contains("agent"),
        "the binary's dependencies are read: {:?}",
        crates["outpost"]
    );
}

/// The binary's line budget ARCHITECTURE.md states: every line of every file in
/// `crates/outpost/src` (as `str::lines` counts them: a last line without a newline counts
/// too), argument definitions and help included. Growth past it means behaviour has crept
/// into the binary; it belongs in a library.
#[test]
fn the_binary_stays_within_its_line_budget() {
    const BUDGET: usize = 1200;
    let page = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let stated = format!(
        "at most {},{:03} lines in `crates/outpost/src`",
        BUDGET / 1000,
        BUDGET % 1000
    );
    assert!(
        page.contains(&stated),
        "ARCHITECTURE.md does not state the budget this test enforces: `{stated}`"
    );
    let mut files = Vec::new();
    let mut folders = vec![root().join("crates/outpost/src")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("crates/outpost/src") {
            let path = entry.expect("entry").path();
            match path.is_dir() {
                true => folders.push(path),
                false => files.push(path),
            }
        }
    }
    let counts: Vec<(usize, String)> = files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).expect("source file");
            (text.lines().count(), path.display().to_string())
        })
        .collect();
    let total: usize = counts.iter().map(|(lines, _)| lines).sum();
    assert!(
        files.len() > 5 && total > 500,
        "counted too little: {counts:?}"
    );
    assert!(
        total <= BUDGET,
        "crates/outpost/src has {total} lines, over its budget of {BUDGET}: move what is not an argument definition into the library that owns it. Per file: {counts:?}"
    );
}
