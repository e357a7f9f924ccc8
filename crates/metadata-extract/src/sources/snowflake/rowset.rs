//! Result rows as Snowflake sends them: Arrow IPC streams (base64 inline in the response,
//! or as result chunks), or JSON arrays of strings. Either way, the extractor reads a value by
//! its column's name.
//!
//! Arrow is decoded by the Arrow project's own IPC reader. Snowflake picks the narrowest
//! integer type for a `NUMBER` column *per batch*, so the accessors take any integer width.

use std::borrow::Cow;
use std::io::Read;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal128Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_buffer::Buffer;
use arrow_schema::DataType;

/// A batch of rows.
pub enum Batch {
    /// An Arrow record batch.
    Arrow(RecordBatch),
    /// Rows of a JSON rowset (every value a string or null).
    Json {
        /// Column names, in order.
        names: Vec<String>,
        /// The rows.
        rows: Vec<Vec<Option<String>>>,
    },
}

/// A column of a batch, found by name.
#[derive(Clone, Copy, Debug)]
pub struct Col(usize);

impl Batch {
    /// The number of rows.
    pub fn len(&self) -> usize {
        match self {
            Self::Arrow(batch) => batch.num_rows(),
            Self::Json { rows, .. } => rows.len(),
        }
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The column named `name`, compared without case (Snowflake's `SHOW` output is
    /// lower-case, `INFORMATION_SCHEMA` upper-case).
    pub fn col(&self, name: &str) -> Option<Col> {
        match self {
            Self::Arrow(batch) => batch
                .schema()
                .fields()
                .iter()
                .position(|f| f.name().eq_ignore_ascii_case(name)),
            Self::Json { names, .. } => names.iter().position(|n| n.eq_ignore_ascii_case(name)),
        }
        .map(Col)
    }

    fn arrow(&self, col: Col) -> Option<&ArrayRef> {
        match self {
            Self::Arrow(batch) => batch.columns().get(col.0),
            Self::Json { .. } => None,
        }
    }

    fn json(&self, row: usize, col: Col) -> Option<&str> {
        match self {
            Self::Json { rows, .. } => rows.get(row)?.get(col.0)?.as_deref(),
            Self::Arrow(_) => None,
        }
    }

    /// A text value (null: `None`). Numbers and booleans are given as text too.
    pub fn str(&self, row: usize, col: Col) -> Option<Cow<'_, str>> {
        let Some(array) = self.arrow(col) else {
            return self.json(row, col).map(Cow::Borrowed);
        };
        if array.is_null(row) {
            return None;
        }
        match array.data_type() {
            DataType::Utf8 => Some(Cow::Borrowed(array.as_string::<i32>().value(row))),
            DataType::LargeUtf8 => Some(Cow::Borrowed(array.as_string::<i64>().value(row))),
            DataType::Utf8View => Some(Cow::Borrowed(array.as_string_view().value(row))),
            DataType::Boolean => Some(Cow::Borrowed(if array.as_boolean().value(row) {
                "true"
            } else {
                "false"
            })),
            _ => integer(array, row).map(|v| Cow::Owned(v.to_string())),
        }
    }

    /// An integer value; text is parsed. `None` for null or a value that is not an integer.
    pub fn i64(&self, row: usize, col: Col) -> Option<i64> {
        let Some(array) = self.arrow(col) else {
            return self.json(row, col)?.trim().parse().ok();
        };
        if array.is_null(row) {
            return None;
        }
        integer(array, row).or_else(|| self.str(row, col)?.trim().parse().ok())
    }

    /// A yes/no value: a boolean, or the text `Y`/`N`, `YES`/`NO`, `true`/`false`.
    pub fn bool(&self, row: usize, col: Col) -> Option<bool> {
        if let Some(array) = self.arrow(col)
            && !array.is_null(row)
            && let DataType::Boolean = array.data_type()
        {
            return Some(array.as_boolean().value(row));
        }
        match self.str(row, col)?.to_ascii_uppercase().as_str() {
            "Y" | "YES" | "TRUE" => Some(true),
            "N" | "NO" | "FALSE" => Some(false),
            _ => None,
        }
    }
}

/// An integer of any width (a `NUMBER(p, 0)` may come as any of them), or a `Decimal128`
/// of scale 0.
fn integer(array: &ArrayRef, row: usize) -> Option<i64> {
    Some(match array.data_type() {
        DataType::Int8 => i64::from(array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => i64::from(array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => i64::from(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row),
        DataType::UInt8 => i64::from(array.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => i64::from(array.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => i64::from(array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => i64::try_from(array.as_primitive::<UInt64Type>().value(row)).ok()?,
        DataType::Decimal128(_, 0) => {
            i64::try_from(array.as_primitive::<Decimal128Type>().value(row)).ok()?
        }
        _ => return None,
    })
}

/// How much of an encoded stream is read at a time.
const PIECE: usize = 64 * 1024;

/// Decodes one Arrow IPC stream as it is read, calling `each` on every batch.
///
/// The Arrow project's push decoder is fed fixed-size pieces and gathers each batch's body
/// in one buffer that the batch's arrays then slice (zero-copy): the peak is one batch body,
/// never the encoded stream (gzip) plus a decoded copy of it.
pub fn each_arrow_batch<E>(
    mut stream: impl Read,
    mut each: impl FnMut(Batch) -> Result<(), E>,
    error: impl Fn(String) -> E,
) -> Result<(), E> {
    let mut decoder = arrow_ipc::reader::StreamDecoder::new();
    let mut piece = vec![0_u8; PIECE];
    loop {
        // A full piece whenever the stream has one: pieces that start 8-byte aligned keep
        // the arrays they hold aligned, so the decoder never has to copy them again.
        let mut filled = 0;
        while filled < PIECE {
            match stream.read(&mut piece[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(error(format!("reading an Arrow IPC stream: {e}"))),
            }
        }
        if filled == 0 {
            break;
        }
        feed(
            &mut decoder,
            Buffer::from_slice_ref(&piece[..filled]),
            &mut each,
            &error,
        )?;
    }
    finish(decoder, &error)
}

/// Decodes one Arrow IPC stream that is already in memory: the batches' arrays are slices
/// of `stream` itself, with no copy.
pub fn each_arrow_batch_in<E>(
    stream: Buffer,
    mut each: impl FnMut(Batch) -> Result<(), E>,
    error: impl Fn(String) -> E,
) -> Result<(), E> {
    let mut decoder = arrow_ipc::reader::StreamDecoder::new();
    feed(&mut decoder, stream, &mut each, &error)?;
    finish(decoder, &error)
}

fn feed<E>(
    decoder: &mut arrow_ipc::reader::StreamDecoder,
    mut buffer: Buffer,
    each: &mut impl FnMut(Batch) -> Result<(), E>,
    error: &impl Fn(String) -> E,
) -> Result<(), E> {
    while !buffer.is_empty() {
        if let Some(batch) = decoder
            .decode(&mut buffer)
            .map_err(|e| error(format!("bad Arrow IPC stream: {e}")))?
        {
            each(Batch::Arrow(batch))?;
        }
    }
    Ok(())
}

fn finish<E>(
    mut decoder: arrow_ipc::reader::StreamDecoder,
    error: &impl Fn(String) -> E,
) -> Result<(), E> {
    decoder
        .finish()
        .map_err(|e| error(format!("truncated Arrow IPC stream: {e}")))?;
    // Every stream starts with its schema: none means there was no stream at all.
    match decoder.schema() {
        Some(_) => Ok(()),
        None => Err(error("not an Arrow IPC stream: it is empty".into())),
    }
}

/// Parses a JSON rowset (`[["a", null], …]`) for columns `names`.
pub fn json_batch(names: Vec<String>, rowset: serde_json::Value) -> Result<Batch, String> {
    let serde_json::Value::Array(rows) = rowset else {
        return Err("the JSON rowset is not an array".into());
    };
    let rows = rows
        .into_iter()
        .map(|row| match row {
            serde_json::Value::Array(values) => Ok(values
                .into_iter()
                .map(|v| match v {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => Some(s),
                    other => Some(other.to_string()),
                })
                .collect()),
            _ => Err("a JSON rowset row is not an array".to_owned()),
        })
        .collect::<Result<_, _>>()?;
    Ok(Batch::Json { names, rows })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{BooleanArray, Int8Array, Int64Array, StringArray};
    use arrow_schema::{Field, Schema};

    use super::*;

    fn ipc(batches: &[RecordBatch]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut out, &batches[0].schema())
            .expect("present");
        for b in batches {
            writer.write(b).expect("present");
        }
        writer.finish().expect("present");
        drop(writer);
        out
    }

    #[test]
    fn integer_widths_may_change_between_batches() {
        let narrow = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("ROWS", DataType::Int8, true)])),
            vec![Arc::new(Int8Array::from(vec![Some(7), None]))],
        )
        .expect("present");
        let wide = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("ROWS", DataType::Int64, true)])),
            vec![Arc::new(Int64Array::from(vec![5_000_000_000]))],
        )
        .expect("present");
        let mut seen = Vec::new();
        for bytes in [ipc(&[narrow]), ipc(&[wide])] {
            each_arrow_batch(
                bytes.as_slice(),
                |b: Batch| {
                    let col = b.col("rows").expect("present");
                    for row in 0..b.len() {
                        seen.push(b.i64(row, col));
                    }
                    Ok::<(), String>(())
                },
                |e| e,
            )
            .expect("present");
        }
        assert_eq!(seen, [Some(7), None, Some(5_000_000_000)]);
    }

    /// A reader that hands out at most 1,000 bytes a read, as a network or gzip stream does.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(out.len()).min(1000);
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn collect(seen: &mut Vec<(String, i64)>) -> impl FnMut(Batch) -> Result<(), String> + '_ {
        move |b: Batch| {
            let (name, ordinal) = (
                b.col("name").expect("present"),
                b.col("ordinal").expect("present"),
            );
            for row in 0..b.len() {
                let name = b.str(row, name).expect("present").into_owned();
                seen.push((name, b.i64(row, ordinal).expect("present")));
            }
            Ok(())
        }
    }

    #[test]
    fn a_stream_larger_than_many_pieces_decodes_whole_from_any_read_size() {
        // Three batches of 30,000 names (about 1 MB of IPC: many 64 KiB pieces, and batch
        // bodies that span piece boundaries), read in pieces, in trickles, and whole.
        let schema = Arc::new(Schema::new(vec![
            Field::new("NAME", DataType::Utf8, false),
            Field::new("ORDINAL", DataType::Int64, false),
        ]));
        let batches: Vec<RecordBatch> = (0..3)
            .map(|b| {
                let names: Vec<String> = (0..30_000).map(|i| format!("t{b}_{i:05}")).collect();
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(StringArray::from(names)),
                        Arc::new(Int64Array::from_iter_values(0..30_000)),
                    ],
                )
                .expect("present")
            })
            .collect();
        let bytes = ipc(&batches);
        assert!(bytes.len() > 10 * PIECE, "{} bytes", bytes.len());
        let expected: Vec<(String, i64)> = (0..3)
            .flat_map(|b| (0..30_000).map(move |i| (format!("t{b}_{i:05}"), i64::from(i))))
            .collect();
        let mut read = Vec::new();
        each_arrow_batch(bytes.as_slice(), collect(&mut read), |e| e).expect("present");
        assert_eq!(read, expected);
        let mut trickled = Vec::new();
        each_arrow_batch(Trickle(&bytes), collect(&mut trickled), |e| e).expect("present");
        assert_eq!(trickled, expected);
        let mut whole = Vec::new();
        each_arrow_batch_in(Buffer::from_vec(bytes.clone()), collect(&mut whole), |e| e)
            .expect("present");
        assert_eq!(whole, expected);
    }

    #[test]
    fn an_empty_or_cut_stream_is_an_error_not_an_empty_result() {
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("ROWS", DataType::Int64, true)])),
            vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
        )
        .expect("present");
        let bytes = ipc(&[batch]);
        let empty = each_arrow_batch(&[][..], |_| Ok(()), |e| e).expect_err("empty");
        assert!(empty.contains("empty"), "{empty}");
        let cut = each_arrow_batch(&bytes[..bytes.len() - 20], |_| Ok(()), |e| e).expect_err("cut");
        assert!(cut.contains("truncated"), "{cut}");
    }

    #[test]
    fn text_and_yes_no_read_by_name_without_case() {
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("name", DataType::Utf8, false),
                Field::new("is_dynamic", DataType::Utf8, true),
                Field::new("flag", DataType::Boolean, true),
            ])),
            vec![
                Arc::new(StringArray::from(vec!["ünï \"q\""])),
                Arc::new(StringArray::from(vec![Some("Y")])),
                Arc::new(BooleanArray::from(vec![Some(false)])),
            ],
        )
        .expect("present");
        let b = Batch::Arrow(batch);
        assert_eq!(
            b.str(0, b.col("NAME").expect("present")).expect("present"),
            "ünï \"q\""
        );
        assert_eq!(b.bool(0, b.col("IS_DYNAMIC").expect("present")), Some(true));
        assert_eq!(b.bool(0, b.col("flag").expect("present")), Some(false));
        assert!(b.col("missing").is_none());
        let json = json_batch(
            vec!["NAME".into(), "ROWS".into()],
            serde_json::json!([["a", "12"], [null, null]]),
        )
        .expect("present");
        let (name, rows) = (
            json.col("name").expect("present"),
            json.col("rows").expect("present"),
        );
        assert_eq!(json.str(0, name).expect("present"), "a");
        assert_eq!(json.i64(0, rows), Some(12));
        assert_eq!(json.str(1, name), None);
    }
}
