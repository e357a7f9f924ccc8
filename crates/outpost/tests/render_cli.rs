//! `outpost render` and `outpost render --check` as CI and users run them.

mod support;

use support::scratch;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

fn outpost(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("outpost runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn committed_workflow_templates_pass_render_check() {
    let out = outpost(&["render", "--check"], &repo_root());
    assert!(
        out.status.success(),
        "render --check failed:\n{}",
        text(&out.stderr)
    );
}

#[test]
fn render_check_fails_with_a_diff_when_stale_and_render_fixes_it() {
    let root = repo_root();
    let dir = scratch("stale");
    let out_dir = dir.join("out");
    let connectors = root.join("connectors");
    let args = |check: bool| {
        let mut a = vec![
            "render".to_owned(),
            "--connectors".into(),
            connectors.display().to_string(),
            "--out".into(),
            out_dir.display().to_string(),
        ];
        if check {
            a.push("--check".into());
        }
        a
    };
    let run = |check: bool| {
        let a = args(check);
        outpost(&a.iter().map(String::as_str).collect::<Vec<_>>(), &dir)
    };

    let missing = run(true);
    assert_eq!(missing.status.code(), Some(1), "an empty folder is stale");
    assert!(text(&missing.stderr).contains("missing: workflowtemplate-outpost-postgres.yaml"));

    assert!(run(false).status.success());
    assert!(run(true).status.success(), "fresh render is up to date");
    let first =
        std::fs::read(out_dir.join("workflowtemplate-outpost-postgres.yaml")).expect("written");

    let edited = out_dir.join("cronworkflow-outpost-orchestrator.yaml");
    let original = std::fs::read_to_string(&edited).expect("read");
    std::fs::write(
        &edited,
        original.replace("concurrencyPolicy: Forbid", "concurrencyPolicy: Allow"),
    )
    .expect("edit");
    std::fs::write(out_dir.join("leftover.yaml"), "kind: Old\n").expect("extra file");
    let stale = run(true);
    assert_eq!(stale.status.code(), Some(1));
    let report = text(&stale.stderr);
    assert!(
        report.contains("-  concurrencyPolicy: Allow")
            && report.contains("+  concurrencyPolicy: Forbid"),
        "{report}"
    );
    assert!(
        report.contains("not generated (delete it): leftover.yaml"),
        "{report}"
    );

    assert!(run(false).status.success());
    assert!(run(true).status.success());
    assert!(
        !out_dir.join("leftover.yaml").exists(),
        "render removes files it no longer produces"
    );
    assert_eq!(
        std::fs::read(out_dir.join("workflowtemplate-outpost-postgres.yaml")).expect("read"),
        first,
        "byte-identical"
    );
}

#[test]
fn a_bad_descriptor_is_reported_with_file_line_and_field_and_nothing_is_written() {
    let dir = scratch("bad");
    let connectors = dir.join("connectors");
    std::fs::create_dir_all(connectors.join("good")).expect("mkdir");
    std::fs::create_dir_all(connectors.join("bad")).expect("mkdir");
    let good = std::fs::read_to_string(repo_root().join("connectors/sqlite/connector.yaml"))
        .expect("read")
        .replace("name: sqlite", "name: good");
    std::fs::write(connectors.join("good/connector.yaml"), &good).expect("write");
    std::fs::write(
        connectors.join("bad/connector.yaml"),
        good.replace("name: good", "name: bad")
            .replace("tag: 0.1.0", "tag: latest"),
    )
    .expect("write");
    let out = outpost(&["render"], &dir);
    assert_eq!(out.status.code(), Some(2));
    let report = text(&out.stderr);
    assert!(
        report.contains(
            "connectors/bad/connector.yaml:10:8: image.tag: `latest` is not a fixed version"
        ),
        "{report}"
    );
    assert!(
        !dir.join("workflow-templates").exists(),
        "nothing written on error"
    );
}

#[test]
fn options_and_overlays_are_read_from_files() {
    let root = repo_root();
    let dir = scratch("options");
    let options = root.join("crates/workflow-compiler/tests/fixtures/every-option.yaml");
    let overlay = root.join("crates/workflow-compiler/tests/fixtures/overlay-allowed.yaml");
    let connectors = root.join("connectors");
    let out = outpost(
        &[
            "render",
            "--connectors",
            &connectors.display().to_string(),
            "--options",
            &options.display().to_string(),
            "--overlay",
            &overlay.display().to_string(),
            "--out",
            "wt",
        ],
        &dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let postgres = std::fs::read_to_string(dir.join("wt/workflowtemplate-outpost-postgres.yaml"))
        .expect("written");
    assert!(postgres.contains("namespace: data-catalog"));
    assert!(postgres.contains("example.com/team: data-platform"));

    std::fs::write(dir.join("typo.yaml"), "namespce: x\n").expect("write");
    let typo = outpost(
        &[
            "render",
            "--connectors",
            &connectors.display().to_string(),
            "--options",
            "typo.yaml",
            "--out",
            "wt",
        ],
        &dir,
    );
    assert_eq!(typo.status.code(), Some(2));
    assert!(
        text(&typo.stderr).contains("typo.yaml:1:1: namespce: unknown field `namespce`"),
        "{}",
        text(&typo.stderr)
    );
}

#[test]
fn schema_subcommand_prints_the_committed_descriptor_schema() {
    let out = outpost(&["schema", "descriptor"], &repo_root());
    assert!(out.status.success());
    let committed =
        std::fs::read_to_string(repo_root().join("connectors/connector-descriptor.schema.json"))
            .expect("read");
    assert_eq!(text(&out.stdout), committed);
}

#[test]
fn help_and_version() {
    let version = outpost(&["--version"], &repo_root());
    assert!(text(&version.stdout).starts_with("outpost "));
    let help = outpost(&["render", "--help"], &repo_root());
    assert!(text(&help.stdout).contains("--check"));
}
