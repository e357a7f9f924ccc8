//! Records the commit the binary is built from, for `outpost --version`.

use std::process::Command;

fn main() {
    let commit = std::env::var("OUTPOST_COMMIT").ok().or_else(|| {
        let out = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    });
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
    // The repository's HEAD and refs, relative to this crate.
    for path in [
        "../../.git/HEAD",
        "../../.git/refs/heads",
        "../../.git/packed-refs",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
}
