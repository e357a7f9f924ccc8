//! Renders 100 connector descriptors the way `outpost render` does (read the connectors
//! folder, parse, validate, compile, check the security baseline, write YAML) and prints the
//! median time against the 50 ms target, side by side with a baseline measured in the same
//! run: compiling the same descriptors and serialising them to JSON only.
//!
//! Run: `cargo bench -p workflow-compiler --bench render`; `PHASES=1` prints where the time
//! goes.

use std::hint::black_box;
use std::time::{Duration, Instant};

use workflow_compiler::{AgentOptions, RenderInput};

/// The allocator of the `outpost` binary, so the bench measures what users run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DESCRIPTORS: usize = 100;
const TARGET: Duration = Duration::from_millis(50);
const ROUNDS: usize = 21;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// A connectors folder holding `texts` (`connectors/<name>/connector.yaml` and its text),
/// removed when dropped (an early return or a panic included).
fn connectors_folder(texts: &[(String, String)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("outpost-bench-connectors-")
        .tempdir()
        .expect("temporary folder");
    for (file, text) in texts {
        let path = dir.path().join(file.trim_start_matches("connectors/"));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../connectors/postgres/connector.yaml");
    let template = std::fs::read_to_string(&root).expect("postgres descriptor");
    let texts: Vec<(String, String)> = (0..DESCRIPTORS)
        .map(|i| {
            let name = format!("source{i:03}");
            (
                format!("connectors/{name}/connector.yaml"),
                template.replace("name: postgres", &format!("name: {name}")),
            )
        })
        .collect();
    let options = AgentOptions::default();

    // The real path of `outpost render`: a connectors folder read, parsed and validated.
    let dir = connectors_folder(&texts);
    let full = |_: &[(String, String)]| {
        let descriptors =
            connector_descriptor::load::read_dir(dir.path()).expect("valid descriptors");
        workflow_compiler::render(RenderInput {
            descriptors: &descriptors,
            options: &options,
            options_source: "bench",
            overlays: &[],
        })
        .expect("render")
    };
    let descriptors: Vec<_> = texts
        .iter()
        .map(|(f, t)| connector_descriptor::parse(f, t).expect("valid"))
        .collect();
    let baseline = || -> usize {
        descriptors
            .iter()
            .map(|d| {
                serde_json::to_string(&workflow_compiler::connector_template(d, &options))
                    .expect("json")
                    .len()
            })
            .sum()
    };

    if std::env::var_os("RENDER_ONLY").is_some() {
        let descriptors: Vec<_> = texts
            .iter()
            .map(|(f, t)| connector_descriptor::parse(f, t).expect("valid"))
            .collect();
        for _ in 0..100 {
            black_box(
                workflow_compiler::render(RenderInput {
                    descriptors: &descriptors,
                    options: &options,
                    options_source: "bench",
                    overlays: &[],
                })
                .expect("render"),
            );
        }
        return;
    }
    if std::env::var_os("PHASES").is_some() {
        phases(&texts, &options);
        return;
    }
    black_box(full(&texts));
    let (mut render_samples, mut baseline_samples) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let start = Instant::now();
        black_box(full(&texts));
        render_samples.push(start.elapsed());
        let start = Instant::now();
        black_box(baseline());
        baseline_samples.push(start.elapsed());
    }
    let fastest = render_samples.iter().min().copied().unwrap_or_default();
    let render = median(render_samples);
    let base = median(baseline_samples);
    let files = full(&texts);
    let bytes: usize = files.iter().map(|f| f.contents.len()).sum();
    println!(
        "render {DESCRIPTORS} descriptors ({} files, {} KiB): median of {ROUNDS} = {:.2} ms",
        files.len(),
        bytes / 1024,
        render.as_secs_f64() * 1e3
    );
    println!("fastest of {ROUNDS}: {:.2} ms", fastest.as_secs_f64() * 1e3);
    println!(
        "baseline (compile + JSON only, same run):           {:.2} ms",
        base.as_secs_f64() * 1e3
    );
    println!(
        "ratio render / baseline: {:.2}x",
        render.as_secs_f64() / base.as_secs_f64()
    );
    println!(
        "ratio render / target ({} ms): {:.2} -> {}",
        TARGET.as_millis(),
        render.as_secs_f64() / TARGET.as_secs_f64(),
        if render <= TARGET { "PASS" } else { "FAIL" }
    );
}

/// Where the time goes (`PHASES=1`): the fastest of 15 runs of each phase.
fn phases(texts: &[(String, String)], options: &AgentOptions) {
    fn fastest<T>(label: &str, mut run: impl FnMut() -> T) {
        let best = (0..15)
            .map(|_| {
                let start = Instant::now();
                black_box(run());
                start.elapsed()
            })
            .min()
            .expect("runs");
        println!("{label:>24}: {:.2} ms", best.as_secs_f64() * 1e3);
    }
    fastest("parse", || {
        texts
            .iter()
            .map(|(f, t)| {
                connector_descriptor::yaml::from_str::<connector_descriptor::ConnectorDescriptor>(
                    f, t,
                )
                .expect("valid")
            })
            .collect::<Vec<_>>()
    });
    let raw: Vec<connector_descriptor::ConnectorDescriptor> = texts
        .iter()
        .map(|(f, t)| connector_descriptor::yaml::from_str(f, t).expect("valid"))
        .collect();
    fastest("validate", || {
        raw.iter()
            .zip(texts)
            .map(|(d, (f, _))| d.clone().validate(f).expect("valid"))
            .collect::<Vec<_>>()
    });
    let descriptors: Vec<_> = raw
        .into_iter()
        .zip(texts)
        .map(|(d, (f, _))| d.validate(f).expect("valid"))
        .collect();
    fastest("compile (typed)", || {
        descriptors
            .iter()
            .map(|d| workflow_compiler::connector_template(d, options))
            .collect::<Vec<_>>()
    });
    let typed: Vec<_> = descriptors
        .iter()
        .map(|d| workflow_compiler::connector_template(d, options))
        .collect();
    fastest("typed -> JSON value", || {
        typed
            .iter()
            .map(|t| serde_json::to_value(t).expect("json"))
            .collect::<Vec<_>>()
    });
    let values: Vec<serde_json::Value> = typed
        .iter()
        .map(|t| serde_json::to_value(t).expect("json"))
        .collect();
    fastest("hardening check", || {
        values
            .iter()
            .map(workflow_compiler::hardening::check)
            .collect::<Vec<_>>()
    });
    fastest("JSON value -> YAML", || {
        values
            .iter()
            .map(|v| serde_saphyr::to_string(v).expect("yaml").len())
            .sum::<usize>()
    });
    fastest("typed -> YAML", || {
        typed
            .iter()
            .map(|v| serde_saphyr::to_string(v).expect("yaml").len())
            .sum::<usize>()
    });
    let dir = connectors_folder(texts);
    fastest("read_connectors", || {
        connector_descriptor::load::read_dir(dir.path())
            .expect("valid")
            .len()
    });
    drop(dir);
    fastest("whole render", || {
        workflow_compiler::render(RenderInput {
            descriptors: &descriptors,
            options,
            options_source: "bench",
            overlays: &[],
        })
        .expect("render")
        .len()
    });
}
