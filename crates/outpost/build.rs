//! Records the commit the binary is built from, for `outpost --version`.

use std::process::Command;

fn main() {
    let commit = std::env::var("OUTPOST_COMMIT")
        .ok()
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    println!(
        "cargo:rustc-env=OUTPOST_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".to_owned())
    );
    println!("cargo:rerun-if-env-changed=OUTPOST_COMMIT");
    // Relative relocations packed (DT_RELR) instead of one 24-byte entry each: about 39,000
    // of them, 0.9 MB of the binary otherwise. glibc 2.36 reads them (Debian 12, the image's
    // base and build stage); a linker that does not know the option warns and ignores it.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    // On x86_64 Linux rustc links with its own LLD (the default since Rust 1.90; the image's
    // build stage and CI use it), which can fold identical functions: the same generic
    // instantiated in several crates (serde visitors, drop glue, YAML/JSON deserializer
    // methods) is one copy instead of one per crate, 0.5 MiB of code and unwind tables.
    // `all` rather than `safe`: rustc emits no address-significance tables (safe would fold
    // nothing), and Rust gives functions no unique address (they are `unnamed_addr`). Data
    // is not folded: without those tables LLD keeps every data section unique.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
        && std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,--icf=all");
    }
    // The repository's HEAD and refs, as git names them: in a linked worktree `.git` is a
    // file, HEAD is the worktree's own and the refs are in the common folder. Only paths that
    // exist are watched: cargo takes a missing one as changed and would rerun this script
    // (and rebuild and relink the binary) on every build.
    for (flag, name) in [
        ("--git-path", "HEAD"),
        ("--git-path", "refs/heads"),
        ("--git-path", "packed-refs"),
    ] {
        let Some(path) = git(&["rev-parse", "--path-format=absolute", flag, name]) else {
            continue;
        };
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

/// `git ARGS` in this crate's folder: its trimmed output, or `None` without git or a
/// repository.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
