//! The committed JSON Schemas of the output format are current, and the writer's output
//! follows them (the per-record checks against real catalogs are in the source tests).

mod support;

use std::path::Path;

use metadata_extract::writer::{read_stream, verify};
use metadata_extract::{
    Column, EntityKind, Generated, OutputWriter, RunIdentity, Table, TableKind,
};

#[test]
fn committed_output_schemas_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("output-format");
    for (name, text) in metadata_extract::json_schemas() {
        let committed =
            std::fs::read_to_string(dir.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            committed == text,
            "output-format/{name} is stale; run `cargo run -p outpost -- output-schemas`"
        );
    }
}

fn table(i: usize) -> Table {
    Table {
        comment: Some("a comment with \"quotes\" and ünïcödé".into()),
        row_count_estimate: Some(i as i64),
        ..Table::new("db", "s", format!("t{i:05}"), TableKind::Table)
    }
}

#[test]
fn parts_roll_over_at_the_size_bound_and_the_manifest_lists_every_file() {
    let scratch = support::scratch("format");
    let dir = scratch.path();
    let mut writer = OutputWriter::create(
        dir,
        RunIdentity {
            connector: "test".into(),
            ..Default::default()
        },
        4096,
    )
    .expect("create");
    for i in 0..500 {
        writer.write(&table(i)).expect("write");
    }
    writer
        .write(&Column {
            database: "db".into(),
            schema: "s".into(),
            table: "t".into(),
            name: "c".into(),
            ordinal: 1,
            data_type: "integer".into(),
            nullable: false,
            default: None,
            generated: Some(Generated::IdentityAlways),
            generation_expression: None,
            comment: None,
        })
        .expect("write");
    assert!(
        !dir.join("manifest.json").exists(),
        "no manifest before finish"
    );
    let manifest = writer.finish().expect("finish");
    let table_parts = manifest
        .files
        .iter()
        .filter(|f| f.kind == EntityKind::Table)
        .count();
    assert!(
        table_parts > 5,
        "500 records of ~250 bytes in 4 KiB parts: {table_parts} parts"
    );
    assert_eq!(
        manifest
            .files
            .iter()
            .filter(|f| f.kind == EntityKind::Table)
            .map(|f| f.records)
            .sum::<u64>(),
        500
    );
    assert_eq!(manifest.totals[&EntityKind::Table], 500);
    assert_eq!(
        manifest.totals[&EntityKind::Lineage],
        0,
        "every kind is listed"
    );
    verify(dir, &manifest).expect("checksums");
    let tables = read_stream(dir, &manifest, EntityKind::Table).expect("read");
    assert_eq!(tables.len(), 500);
    for (i, table) in tables.iter().enumerate() {
        assert_eq!(
            table["name"],
            format!("t{i:05}"),
            "order is kept across parts"
        );
    }
    // Each part holds whole lines, within the bound, as many as the manifest says.
    for file in manifest
        .files
        .iter()
        .filter(|f| f.kind == EntityKind::Table)
    {
        let lines = zstd::decode_all(std::fs::File::open(dir.join(&file.path)).expect("part"))
            .expect("zstd");
        assert!(lines.len() <= 4096, "{}: {} bytes", file.path, lines.len());
        assert!(
            lines.ends_with(b"\n"),
            "{}: ends with a whole line",
            file.path
        );
        let records = lines.iter().filter(|b| **b == b'\n').count() as u64;
        assert_eq!(records, file.records, "{}", file.path);
    }

    // The manifest validates against its schema; every record against its kind's schema.
    let schemas: std::collections::BTreeMap<String, serde_json::Value> =
        metadata_extract::json_schemas()
            .into_iter()
            .map(|(name, text)| (name, serde_json::from_str(&text).expect("schema")))
            .collect();
    let manifest_json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("manifest.json")).expect("manifest"),
    )
    .expect("json");
    let validator =
        jsonschema::draft202012::new(&schemas["manifest.schema.json"]).expect("compiles");
    assert!(
        validator.is_valid(&manifest_json),
        "{:?}",
        validator
            .iter_errors(&manifest_json)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    let validator =
        jsonschema::draft202012::new(&schemas[EntityKind::Table.schema_file()]).expect("compiles");
    assert!(tables.iter().all(|t| validator.is_valid(t)));

    // Tampering is detected.
    let first = &manifest.files[0];
    std::fs::write(dir.join(&first.path), b"tampered").expect("tamper");
    assert!(verify(dir, &manifest).is_err());
}

#[test]
fn a_folder_with_files_is_refused() {
    let scratch = support::scratch("format-busy");
    let dir = scratch.path();
    std::fs::write(dir.join("leftover"), b"x").expect("write");
    assert!(OutputWriter::create(dir, RunIdentity::default(), 1024).is_err());
}

/// A run that stops before `finish` (an error, a cancellation, a crash) leaves data files but
/// never a manifest, so its output can never be mistaken for a complete one.
#[test]
fn an_unfinished_run_has_no_manifest() {
    let scratch = support::scratch("format-unfinished");
    let dir = scratch.path();
    let mut writer = OutputWriter::create(dir, RunIdentity::default(), 1024).expect("create");
    for i in 0..100 {
        writer.write(&table(i)).expect("write");
    }
    drop(writer);
    assert!(dir.join("tables").exists(), "data was written");
    assert!(!dir.join("manifest.json").exists() && !dir.join(".manifest.json.partial").exists());
}
