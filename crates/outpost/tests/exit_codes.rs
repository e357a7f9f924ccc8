//! One exit-code table (`outpost_core::ExitCode`): the README documents exactly its codes,
//! every subcommand's `--help` prints its rows from it, and a command line clap rejects
//! exits 64 (`EX_USAGE`), as the table says.

use std::collections::BTreeSet;

use outpost_core::ExitCode;

mod support;

#[test]
fn the_readme_documents_exactly_the_codes_of_the_enum() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let section = readme
        .split("## Exit codes")
        .nth(1)
        .expect("README has an `## Exit codes` section");
    let documented: BTreeSet<u8> = section
        .lines()
        .take_while(|line| !line.starts_with("## "))
        .filter_map(|line| line.strip_prefix("| "))
        .filter_map(|line| line.split(' ').next()?.parse().ok())
        .collect();
    let defined: BTreeSet<u8> = ExitCode::ALL.iter().map(|c| c.code()).collect();
    assert_eq!(
        documented, defined,
        "README's exit-code table against ExitCode::ALL"
    );
}

#[test]
fn help_prints_the_exit_codes_from_the_one_table() {
    for (subcommand, code) in [
        ("extract", ExitCode::Temporary),
        ("upload", ExitCode::NoInput),
        ("orchestrate", ExitCode::Config),
        ("render", ExitCode::Stale),
    ] {
        let output = support::outpost()
            .args([subcommand, "--help"])
            .output()
            .expect("outpost runs");
        assert!(output.status.success(), "{subcommand} --help");
        let help = String::from_utf8_lossy(&output.stdout);
        let row = outpost_core::exit::help_table(&[code]);
        assert!(
            help.contains(row.trim_end()),
            "`{subcommand} --help` lacks `{}`:\n{help}",
            row.trim_end()
        );
    }
}

#[test]
fn a_command_line_clap_rejects_exits_64() {
    for args in [
        &["extract"][..],
        &["upload", "--no-such-flag"],
        &["no-such-subcommand"],
        &["report", "--status", "Sideways"],
    ] {
        let output = support::outpost()
            .args(args)
            .output()
            .expect("outpost runs");
        assert_eq!(
            output.status.code(),
            Some(i32::from(ExitCode::Usage.code())),
            "outpost {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let help = support::outpost()
        .arg("--version")
        .output()
        .expect("outpost runs");
    assert_eq!(help.status.code(), Some(0), "--version exits 0");
}
