//! `unsafe` code lives in this crate only: every other crate of the workspace inherits the
//! workspace's lints, and those `forbid` it (README, "crates").

use std::path::Path;

#[test]
fn every_other_crate_inherits_the_lints_that_forbid_unsafe_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).expect("workspace");
    let lints = workspace
        .split("[workspace.lints.rust]")
        .nth(1)
        .expect("[workspace.lints.rust]");
    let lints = lints.split("\n[").next().unwrap_or_default();
    assert!(
        lints
            .lines()
            .any(|l| l.replace(' ', "") == "unsafe_code=\"forbid\""),
        "the workspace no longer forbids unsafe code: {lints}"
    );
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("crates")).expect("crates") {
        let dir = entry.expect("entry").path();
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        if dir.ends_with("allocator") {
            continue;
        }
        let inherits = manifest
            .split("\n[lints]")
            .nth(1)
            .and_then(|rest| rest.lines().find(|l| !l.trim().is_empty()))
            .is_some_and(|l| l.replace(' ', "") == "workspace=true");
        assert!(
            inherits,
            "{} does not inherit the workspace's lints ([lints] workspace = true)",
            dir.display()
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} crates found");
}
