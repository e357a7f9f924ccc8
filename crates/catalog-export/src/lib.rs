//! Outpost's records in the catalogs' own formats, so that a run can be loaded by a catalog
//! without a converter of its own:
//!
//! - [`Format::DataHub`]: the metadata change proposals that `datahub ingest` reads with its
//!   `file` source, with the URNs, containers and aspects DataHub's own database sources give
//!   the same database ([`datahub`]);
//! - [`Format::OpenLineage`]: one OpenLineage `DatasetEvent` per table or view, as JSON
//!   Lines ([`openlineage`]).
//!
//! Pure: the run is read through [`Lines`] (its implementation does the I/O) and the result
//! is written to any `Write`. Records flow through one at a time; what is held is what a
//! format must join across streams (keys per table, view definitions), never the columns.

use std::io::Write;

use serde::de::DeserializeOwned;

use outpost_core::output::{EntityKind, Manifest};

pub mod datahub;
pub mod datahub_tableau;
pub mod openlineage;

/// The catalog format to write (its one spelling is `outpost_core`'s).
pub use outpost_core::output::ExportFormat as Format;

/// How the run's objects are named in the catalog.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// DataHub's environment (`PROD` when not given), as the DataHub source's `env`.
    pub env: Option<String>,
    /// DataHub's platform instance, as the DataHub source's `platform_instance`: needed when
    /// two servers of one platform hold databases of the same name.
    pub platform_instance: Option<String>,
    /// OpenLineage's dataset namespace (`postgres://db.example.com:5432`). Outpost's records
    /// never carry a server's address, so without it the namespace is
    /// `<platform>://<connection>` (the connection's name, or the connector's).
    pub namespace: Option<String>,
    /// OpenLineage namespaces of the database servers a BI site reads, by DataHub platform
    /// name (`postgres` → `postgres://db.example.com:5432`): the BI records name a table's
    /// database, never its server.
    pub upstream_namespaces: Vec<(String, String)>,
}

/// The catalog formats a run is also written in by the extract step (`--export`), and how
/// they name its objects.
#[derive(Clone, Debug, Default)]
pub struct Exports {
    /// The formats; none by default.
    pub formats: Vec<Format>,
    /// Their naming.
    pub options: Options,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The run could not be read (a missing part, a record that is not what its stream
    /// says): the reader's error, which names the file and line.
    #[error(transparent)]
    Read(Box<dyn std::error::Error + Send + Sync>),
    /// The export could not be written.
    #[error("writing the export: {0}")]
    Write(#[from] std::io::Error),
    /// The run's connector has no mapping to the format.
    #[error("connector `{connector}` has no {format} mapping")]
    Unsupported {
        /// The run's connector.
        connector: String,
        /// The format asked for.
        format: &'static str,
    },
    /// An option's value cannot be used.
    #[error("{0}")]
    Option(String),
}

impl ExportError {
    /// A reader's error.
    pub fn read(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Read(e.into())
    }
}

/// A run's streams, line by line (one record a line), in the run's order: what reads the
/// run (and does its I/O) gives the lines; the formats parse them, here.
///
/// Object-safe and untyped, so that the formats and the records' parsing are compiled once,
/// in this crate: a generic reader would copy them into every crate that instantiates it, at
/// that crate's optimisation level (the binary grew by a megabyte so).
pub trait Lines: Send {
    /// Calls `each` with every line of `kind`'s stream, in order, until it answers
    /// `Ok(false)`; its error (a line that is not a record of the stream) comes back as an
    /// [`ExportError::Read`] that names the file and line.
    fn each_line(
        &mut self,
        kind: EntityKind,
        each: &mut dyn FnMut(&str) -> Result<bool, serde_json::Error>,
    ) -> Result<(), ExportError>;
}

impl dyn Lines + '_ {
    /// Calls `each` with every record of `kind`, typed.
    ///
    /// The stream is parsed on a second thread, in batches, while `each` runs on this one:
    /// reading a run back is as much work as what is done with it.
    pub(crate) fn each<T: DeserializeOwned + Send>(
        &mut self,
        kind: EntityKind,
        each: &mut dyn FnMut(T) -> Result<(), ExportError>,
    ) -> Result<(), ExportError> {
        const BATCH: usize = 512;
        // Few batches in flight: memory stays a few thousand records.
        let (send, receive) = std::sync::mpsc::sync_channel::<Vec<T>>(4);
        std::thread::scope(|scope| {
            let reader = scope.spawn(move || {
                let mut batch = Vec::with_capacity(BATCH);
                self.each_line(kind, &mut |line| {
                    batch.push(serde_json::from_str(line)?);
                    if batch.len() == BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        // A closed channel: the consumer stopped; so does the reading.
                        return Ok(send.send(full).is_ok());
                    }
                    Ok(true)
                })?;
                if !batch.is_empty() {
                    let _ = send.send(batch);
                }
                Ok(())
            });
            let mut consumed = Ok(());
            'batches: for batch in receive {
                for record in batch {
                    if let Err(e) = each(record) {
                        consumed = Err(e);
                        break 'batches;
                    }
                }
            }
            let read = reader
                .join()
                .unwrap_or_else(|_| Err(ExportError::read("the run's reader panicked")));
            consumed.and(read)
        })
    }
}

/// How a connector's records map onto a catalog platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Platform {
    /// DataHub's platform name and OpenLineage's namespace scheme.
    pub name: &'static str,
    /// Whether datasets are named `database.schema.table` (PostgreSQL, Snowflake) or, where
    /// the source has no level above schemas, `schema.table` (MySQL, whose records carry
    /// the server as `database`).
    pub three_level: bool,
    /// Whether URNs are lower-cased, as DataHub's source for this platform does by default
    /// (`convert_urns_to_lowercase`: Snowflake).
    pub lowercase_urns: bool,
}

impl Platform {
    /// The platform of a connector, as the run's manifest names it.
    pub fn of(connector: &str) -> Option<Platform> {
        let (name, three_level, lowercase_urns) = match connector {
            "postgres" => ("postgres", true, false),
            "mysql" => ("mysql", false, false),
            "sqlite" => ("sqlite", true, false),
            "snowflake" => ("snowflake", true, true),
            "tableau" => ("tableau", true, false),
            _ => return None,
        };
        Some(Platform {
            name,
            three_level,
            lowercase_urns,
        })
    }

    /// Whether the connector reads a BI site rather than a database.
    pub fn is_bi(self) -> bool {
        self.name == "tableau"
    }
}

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Objects written: DataHub proposals, or OpenLineage events.
    pub written: u64,
}

/// Whether a run of `connector` can be exported in `formats` under `options`: checked before
/// an extraction that is asked for exports, so a bad option fails at once, not after the run.
pub fn check(connector: &str, formats: &[Format], options: &Options) -> Result<(), ExportError> {
    let Some(platform) = Platform::of(connector) else {
        return match formats.first() {
            Some(format) => Err(ExportError::Unsupported {
                connector: connector.to_owned(),
                format: format.name(),
            }),
            None => Ok(()),
        };
    };
    for format in formats {
        match format {
            Format::DataHub => {
                datahub::Naming::new(platform, options)?;
            }
            Format::OpenLineage => openlineage::check_namespace(options)?,
        }
    }
    Ok(())
}

/// Writes the run whose manifest is `manifest` to `out` in `format`.
pub fn export(
    manifest: &Manifest,
    records: &mut dyn Lines,
    format: Format,
    options: &Options,
    out: &mut dyn Write,
) -> Result<Summary, ExportError> {
    let connector = &manifest.identity.connector;
    let platform = Platform::of(connector).ok_or_else(|| ExportError::Unsupported {
        connector: connector.clone(),
        format: format.name(),
    })?;
    match format {
        Format::DataHub => datahub::export(manifest, platform, records, options, out),
        Format::OpenLineage => openlineage::export(manifest, platform, records, options, out),
    }
}

/// Calls `each` with every run of consecutive records of `kind` that share `key` (the columns
/// of one table, the edges of one view: streams keep them together), never empty. Only one
/// run is held at a time.
pub(crate) fn each_group<T: DeserializeOwned + Send, K: PartialEq>(
    records: &mut dyn Lines,
    kind: EntityKind,
    key: impl Fn(&T) -> K,
    each: &mut dyn FnMut(&[T]) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    let mut group: Vec<T> = Vec::new();
    let mut group_key: Option<K> = None;
    records.each(kind, &mut |record: T| {
        let k = key(&record);
        if group_key.as_ref().is_some_and(|g| *g != k) {
            each(&group)?;
            group.clear();
        }
        group_key = Some(k);
        group.push(record);
        Ok(())
    })?;
    if group.is_empty() {
        Ok(())
    } else {
        each(&group)
    }
}

/// Milliseconds since the epoch of an RFC 3339 UTC time as the manifest writes it
/// (`2026-01-02T03:04:05.678Z`); 0 when it is not one.
pub(crate) fn epoch_millis(rfc3339: &str) -> i64 {
    let parse = || -> Option<i64> {
        let (date, time) = rfc3339.strip_suffix('Z')?.split_once('T')?;
        let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
        let (y, m, day) = (d.next()??, d.next()??, d.next()??);
        let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
        let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
        let (h, min, s) = (t.next()??, t.next()??, t.next()??);
        let millis: i64 = format!("{frac:0<3}").get(..3)?.parse().ok()?;
        // Days from the civil date (Howard Hinnant's algorithm).
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(((days * 24 + h) * 60 + min) * 60_000 + s * 1000 + millis)
    };
    parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_times_become_epoch_millis() {
        assert_eq!(epoch_millis("1970-01-01T00:00:00Z"), 0);
        assert_eq!(epoch_millis("2026-12-01T03:06:32.177Z"), 1_796_094_392_177);
        assert_eq!(epoch_millis("2000-02-29T12:00:00.5Z"), 951_825_600_500);
        assert_eq!(epoch_millis("not a time"), 0);
    }

    #[test]
    fn formats_have_one_spelling() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
        }
        assert!("DataHub".parse::<Format>().is_err());
    }
}
