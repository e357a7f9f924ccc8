//! The README, the Dockerfile and the release profile say the same thing about the shipped
//! binary: its size limit is the one `scripts/build-binary.sh` enforces (CI and the image
//! build run it), and the release profile aborts on panic, which the size relies on.

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

#[test]
fn the_documented_size_limit_is_the_enforced_one() {
    let output = Command::new("bash")
        .arg(root().join("scripts/build-binary.sh"))
        .arg("--limit-mib")
        .output()
        .expect("bash runs scripts/build-binary.sh");
    assert!(
        output.status.success(),
        "build-binary.sh --limit-mib failed"
    );
    let limit = String::from_utf8(output.stdout).expect("UTF-8");
    let limit = limit.trim();
    assert!(
        limit.parse::<u32>().is_ok(),
        "limit `{limit}` is not a number"
    );
    let readme = read("README.md").replace("\n  ", " ");
    for claim in [
        format!("fail when the binary is over {limit} MiB"),
        format!("(target ≤ {limit} MiB)"),
    ] {
        assert!(readme.contains(&claim), "README.md does not say `{claim}`");
    }
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains(&format!("limit {limit} MiB")),
        "the Dockerfile does not say `limit {limit} MiB`"
    );
}

#[test]
fn the_release_profile_aborts_on_panic() {
    let manifest = read("Cargo.toml");
    let release = manifest
        .split("\n[profile.release]\n")
        .nth(1)
        .expect("Cargo.toml has [profile.release]");
    let section = release.split("\n[").next().unwrap_or_default();
    assert!(
        section.lines().any(|l| l.trim() == "panic = \"abort\""),
        "[profile.release] does not set panic = \"abort\", which README.md and the binary's size limit rely on"
    );
}
