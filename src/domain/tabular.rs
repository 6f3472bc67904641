//! Rows as CSV for BI tools: the columns of a row type, one cell per column, RFC 4180
//! quoting.
//!
//! The columns are the properties of the row's OpenAPI schema, in its order, which is the
//! order of the fields in the JSON answer. Taking them from the schema rather than from the
//! first row means an empty export still has its header row, and a row that leaves a field
//! out cannot shift the cells after it. Cells follow the JSON value: a string as is, a
//! number or boolean as its JSON text, `null` (or an absent field) as an empty cell, and
//! an object or array (such as an audit event's `changes`) as compact JSON text.
//!
//! Quoting is the `csv` crate's: a cell is quoted when it holds a comma, a quote, CR or LF
//! (quotes doubled), and every record ends in CRLF.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::{RefOr, Schema};

/// The JSON field names of `T`, in answer order, from its OpenAPI schema.
pub fn columns<T: ToSchema>() -> Vec<String> {
    let mut named = Vec::new();
    T::schemas(&mut named);
    let schema = T::schema();
    schema_columns(&schema, &|name| {
        named.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    })
}

/// The properties of an object schema in order; `allOf` parts (what `#[serde(flatten)]`
/// documents) contribute theirs in order, and `lookup` resolves `$ref`s by schema name.
pub fn schema_columns<'a>(
    schema: &'a RefOr<Schema>,
    lookup: &dyn Fn(&str) -> Option<&'a RefOr<Schema>>,
) -> Vec<String> {
    let mut columns = Vec::new();
    push_properties(schema, lookup, &mut columns, 0);
    columns
}

fn push_properties<'a>(
    schema: &'a RefOr<Schema>,
    lookup: &dyn Fn(&str) -> Option<&'a RefOr<Schema>>,
    columns: &mut Vec<String>,
    depth: usize,
) {
    // Schemas are finite trees; the bound only guards against a self-referencing one.
    if depth > 8 {
        return;
    }
    match schema {
        RefOr::Ref(reference) => {
            let name = reference
                .ref_location
                .rsplit('/')
                .next()
                .unwrap_or_default();
            if let Some(schema) = lookup(name) {
                push_properties(schema, lookup, columns, depth + 1);
            }
        }
        RefOr::T(Schema::Object(object)) => {
            for name in object.properties.keys() {
                if !columns.contains(name) {
                    columns.push(name.clone());
                }
            }
        }
        RefOr::T(Schema::AllOf(all)) => {
            for item in &all.items {
                push_properties(item, lookup, columns, depth + 1);
            }
        }
        _ => {}
    }
}

/// The text of one cell for a JSON value.
pub fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// One figure of a nested answer (a study's metrics) as a row: its path and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Figure {
    /// The JSON path of the figure: object keys joined by `.`, array items as `[i]`
    /// (`enrollment.velocity_4w`, `risks.heat_map[2][3]`).
    pub figure: String,
    /// Its value as a cell: text as is, a number or boolean as its JSON text, `null` empty.
    pub value: String,
}

/// Every scalar of `value`, by object key in alphabetical order (serde_json's map order)
/// and by array index, as (path, cell) rows: what a BI tool reads as
/// a two-column table. An empty object or array is one row with its JSON text.
pub fn figures(value: &Value) -> Vec<Figure> {
    fn walk(path: String, value: &Value, out: &mut Vec<Figure>) {
        match value {
            Value::Object(fields) if !fields.is_empty() => {
                for (key, field) in fields {
                    let path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    walk(path, field, out);
                }
            }
            Value::Array(items) if !items.is_empty() => {
                for (index, item) in items.iter().enumerate() {
                    walk(format!("{path}[{index}]"), item, out);
                }
            }
            other => out.push(Figure {
                figure: path,
                value: cell(Some(other)),
            }),
        }
    }
    let mut out = Vec::new();
    walk(String::new(), value, &mut out);
    out
}

/// Writes the header row once, then rows, handing back the CSV text written so far so it
/// can be sent while the next rows are fetched.
pub struct CsvEncoder {
    columns: Vec<String>,
    out: Vec<u8>,
}

/// RFC 4180: quote only where needed, CRLF after every record.
fn writer(out: &mut Vec<u8>) -> csv::Writer<&mut Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(out)
}

impl CsvEncoder {
    /// An encoder for rows of `T` whose output starts with the header row.
    pub fn new<T: ToSchema>() -> Result<Self, anyhow::Error> {
        Self::with_columns(columns::<T>())
    }

    pub fn with_columns(columns: Vec<String>) -> Result<Self, anyhow::Error> {
        let mut out = Vec::new();
        let mut header = writer(&mut out);
        header.write_record(&columns)?;
        header.flush()?;
        drop(header);
        Ok(Self { columns, out })
    }

    /// Appends one record per row.
    pub fn write<T: Serialize>(&mut self, rows: &[T]) -> Result<(), anyhow::Error> {
        let mut records = writer(&mut self.out);
        for row in rows {
            let Value::Object(fields) = serde_json::to_value(row)? else {
                anyhow::bail!("a CSV row must serialize to a JSON object");
            };
            records.write_record(
                self.columns
                    .iter()
                    .map(|column| cell(fields.get(column.as_str()))),
            )?;
        }
        records.flush()?;
        Ok(())
    }

    /// The CSV text written since the last call (the header row included, the first time).
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Serialize, ToSchema)]
    struct Inner {
        id: i64,
        name: String,
    }

    #[derive(Serialize, ToSchema)]
    struct Row {
        #[serde(flatten)]
        inner: Inner,
        note: Option<String>,
        #[schema(value_type = Object)]
        changes: Value,
        ok: bool,
    }

    fn text(rows: &[Row]) -> String {
        let mut encoder = CsvEncoder::new::<Row>().unwrap();
        encoder.write(rows).unwrap();
        String::from_utf8(encoder.take()).unwrap()
    }

    #[test]
    fn columns_follow_the_json_field_order_through_flatten() {
        assert_eq!(columns::<Row>(), ["id", "name", "note", "changes", "ok"]);
    }

    #[test]
    fn an_empty_export_is_the_header_row() {
        assert_eq!(text(&[]), "id,name,note,changes,ok\r\n");
    }

    #[test]
    fn cells_are_quoted_per_rfc_4180() {
        let row = Row {
            inner: Inner {
                id: 7,
                name: "Müller, \"Hans\"\nline 2".into(),
            },
            note: None,
            changes: json!({"status": {"old": "a", "new": "b,c"}}),
            ok: true,
        };
        assert_eq!(
            text(&[row]),
            "id,name,note,changes,ok\r\n\
             7,\"Müller, \"\"Hans\"\"\nline 2\",,\"{\"\"status\"\":{\"\"new\"\":\"\"b,c\"\",\"\"old\"\":\"\"a\"\"}}\",true\r\n"
        );
    }

    #[test]
    fn nested_figures_flatten_to_paths() {
        let value = json!({
            "as_of": "2026-11-25T10:00:00Z",
            "enrollment": {"target": 100, "velocity_4w": null, "on_track": true},
            "risks": {"heat_map": [[0, 1], [2, 3]], "none": []}
        });
        let rows: Vec<(String, String)> = figures(&value)
            .into_iter()
            .map(|f| (f.figure, f.value))
            .collect();
        let expected = [
            ("as_of", "2026-11-25T10:00:00Z"),
            ("enrollment.on_track", "true"),
            ("enrollment.target", "100"),
            ("enrollment.velocity_4w", ""),
            ("risks.heat_map[0][0]", "0"),
            ("risks.heat_map[0][1]", "1"),
            ("risks.heat_map[1][0]", "2"),
            ("risks.heat_map[1][1]", "3"),
            ("risks.none", "[]"),
        ]
        .map(|(f, v)| (f.to_string(), v.to_string()));
        assert_eq!(rows, expected);
    }

    #[test]
    fn take_hands_back_only_what_is_new() {
        let mut encoder = CsvEncoder::with_columns(vec!["a".into()]).unwrap();
        assert_eq!(encoder.take(), b"a\r\n");
        encoder.write(&[json!({"a": 1})]).unwrap();
        assert_eq!(encoder.take(), b"1\r\n");
        assert_eq!(encoder.take(), b"");
    }

    #[test]
    fn absent_fields_and_nulls_are_empty_cells() {
        let mut encoder = CsvEncoder::with_columns(vec!["a".into(), "b".into()]).unwrap();
        encoder.write(&[json!({"b": null})]).unwrap();
        assert_eq!(encoder.take(), b"a,b\r\n,\r\n");
    }
}
