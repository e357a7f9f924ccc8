//! `outpost run`: the README's first command, and local mode's terminal manners.

mod support;

use support::scratch;

use std::path::{Path, PathBuf};
use std::process::Command;

use metadata_extract::{EntityKind, Manifest};

fn outpost(cwd: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(args)
        .current_dir(cwd)
        .env_remove("OUTPOST_LOG_FORMAT")
        .env_remove("RUST_LOG")
        .output()
        .expect("runs")
}

fn manifests(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "manifest.json") {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn run_without_arguments_delivers_the_sample_catalog_to_outpost_output() {
    let cwd = scratch("default");
    let run = outpost(&cwd, &["run"]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("Extracted the sample catalog"), "{stdout}");
    let found = manifests(&cwd.join("outpost-output"));
    assert_eq!(found.len(), 1, "{found:?}");
    let manifest_path = &found[0];
    assert!(
        stdout.contains(&manifest_path.display().to_string()),
        "{stdout}"
    );
    let folder = manifest_path.parent().expect("run folder");
    assert!(folder.starts_with(cwd.join("outpost-output/sample/local")));
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(manifest_path).expect("manifest")).expect("json");
    // The checksums in the manifest match the files next to it.
    metadata_extract::writer::verify(folder, &manifest).expect("checksums match");
    let total = |kind: EntityKind| manifest.totals.get(&kind).copied().unwrap_or(0);
    assert!(total(EntityKind::Table) >= 20, "{:?}", manifest.totals);
    assert!(total(EntityKind::Column) >= 100, "{:?}", manifest.totals);
    assert!(
        total(EntityKind::ViewDefinition) >= 3,
        "{:?}",
        manifest.totals
    );
    assert!(total(EntityKind::Constraint) >= 20, "{:?}", manifest.totals);
    assert!(total(EntityKind::Index) >= 3, "{:?}", manifest.totals);
}

#[test]
fn a_repeated_run_id_is_delivered_once() {
    let cwd = scratch("repeat");
    let first = outpost(&cwd, &["run", "--run-id=fixed"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = outpost(&cwd, &["run", "--run-id=fixed"]);
    assert!(second.status.success());
    // Extraction timestamps differ, so the second manifest replaces the first one.
    assert_eq!(manifests(&cwd.join("outpost-output")).len(), 1);
}

#[test]
fn quiet_prints_nothing_and_json_logs_are_json() {
    let cwd = scratch("manners");
    let quiet = outpost(&cwd, &["run", "--quiet"]);
    assert!(quiet.status.success());
    assert!(
        quiet.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stdout)
    );
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );

    let json = outpost(&cwd, &["run", "--log-format=json"]);
    assert!(json.status.success());
    let stderr = String::from_utf8_lossy(&json.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!lines.is_empty());
    for line in lines {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(event["level"].is_string(), "{line}");
    }
    // Not a terminal: no colour codes in text logs either.
    let text = outpost(&cwd, &["run"]);
    assert!(!String::from_utf8_lossy(&text.stderr).contains('\u{1b}'));
}

#[test]
fn local_mode_errors_keep_their_exit_codes() {
    let cwd = scratch("errors");
    let control_plane = outpost(&cwd, &["run", "--control-plane=https://cp.example"]);
    assert_eq!(control_plane.status.code(), Some(78));
    let unknown = outpost(&cwd, &["run", "--connector=oracle"]);
    assert_eq!(unknown.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown connector `oracle`"));
    let missing = outpost(
        &cwd,
        &[
            "run",
            "--connector=sqlite",
            "--param=path=/nonexistent/x.db",
        ],
    );
    assert_eq!(missing.status.code(), Some(75));
    assert!(
        !cwd.join("outpost-output").exists(),
        "a failed run delivered something"
    );
}

#[test]
fn every_subcommand_has_help_and_the_version_names_the_commit() {
    let cwd = scratch("help");
    // Every subcommand `outpost --help` lists (and every subcommand of those that have
    // their own), so a new one cannot ship without help.
    let listed = |args: &[&str]| -> Vec<String> {
        let help = outpost(&cwd, args);
        assert!(help.status.success(), "{args:?}");
        String::from_utf8_lossy(&help.stdout)
            .lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .filter(|name| name != "help")
            .collect()
    };
    let mut commands: Vec<Vec<String>> = Vec::new();
    for top in listed(&["--help"]) {
        let nested = listed(&[top.as_str(), "--help"]);
        if nested.is_empty() {
            commands.push(vec![top]);
        } else {
            commands.extend(nested.into_iter().map(|sub| vec![top.clone(), sub]));
        }
    }
    for expected in [
        "extract",
        "upload",
        "run",
        "orchestrate",
        "heartbeat",
        "report",
        "render",
    ] {
        assert!(
            commands.iter().any(|c| c[0] == expected),
            "{expected} not listed"
        );
    }
    assert!(commands.len() >= 12, "{commands:?}");
    for command in &commands {
        let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
        args.push("--help");
        let help = outpost(&cwd, &args);
        assert!(help.status.success(), "{command:?}");
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(text.contains("Usage: outpost"), "{command:?}: {text}");
        assert!(text.contains("--log-format"), "{command:?}: {text}");
        // Step entrypoints document their exit codes.
        if ["extract", "upload", "orchestrate", "heartbeat", "report"]
            .contains(&command[0].as_str())
        {
            assert!(
                text.contains("Exit codes"),
                "{command:?} documents no exit codes"
            );
        }
    }
    let version = outpost(&cwd, &["--version"]);
    let text = String::from_utf8_lossy(&version.stdout);
    assert!(text.starts_with("outpost 0.1.0 (commit "), "{text}");
}
