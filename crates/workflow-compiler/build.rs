//! Deflates the vendored Argo schemas for embedding. The two `argo-schemas/*.json` files are
//! 1.2 MB of pretty-printed JSON; deflated they are about 0.2 MB of the binary, and
//! `argo_schema::EMBEDDED` inflates them on first use (a few milliseconds, once). The JSON
//! files stay Argo's, unchanged: they are the only source, read from this crate's folder.

use std::path::PathBuf;

/// The releases in `argo-schemas/`, as `schema-v<release>.json`.
const RELEASES: [&str; 2] = ["4.1.2", "3.7.18"];

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for release in RELEASES {
        let source = format!("argo-schemas/schema-v{release}.json");
        println!("cargo:rerun-if-changed={source}");
        let json = std::fs::read(&source).unwrap_or_else(|e| panic!("{source}: {e}"));
        // Level 10 is miniz's best; the files are small enough that it costs well under a
        // second here.
        let deflated = miniz_oxide::deflate::compress_to_vec(&json, 10);
        let target = out.join(format!("schema-v{release}.json.deflate"));
        std::fs::write(&target, deflated).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
    }
}
