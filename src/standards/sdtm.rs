//! Protocol deviations as the CDISC SDTM DV domain, in Dataset-JSON 1.1 (or CSV). The
//! variables and their sources are documented as a table in `docs/standards.md`.
//!
//! One record per deviation that names a participant and is not `invalidated`; the others
//! are counted, for the `X-Excluded-Deviations` header. Rows are sorted by the dataset's
//! keys (`STUDYID`, `USUBJID`, `DVSEQ`), and `DVSEQ` numbers a subject's deviations 1..n
//! by `occurred_on`, then `external_id` (missing ones last), then id.

use std::cmp::Ordering;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::domain::enums::{DeviationCategory, DeviationImportance, DeviationStatus};

pub use crate::db::deviations::DvSource as Source;

/// One column of the dataset.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Column {
    #[serde(rename = "itemOID")]
    pub item_oid: String,
    pub name: &'static str,
    pub label: &'static str,
    pub data_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_sequence: Option<u32>,
}

/// (name, label, Dataset-JSON data type, key sequence), in the dataset's order.
const VARIABLES: &[(&str, &str, &str, Option<u32>)] = &[
    ("STUDYID", "Study Identifier", "string", Some(1)),
    ("DOMAIN", "Domain Abbreviation", "string", None),
    ("USUBJID", "Unique Subject Identifier", "string", Some(2)),
    ("DVSEQ", "Sequence Number", "integer", Some(3)),
    ("DVREFID", "Reference ID", "string", None),
    ("DVSPID", "Sponsor-Defined Identifier", "string", None),
    ("DVTERM", "Protocol Deviation Term", "string", None),
    ("DVDECOD", "Protocol Deviation Coded Term", "string", None),
    ("DVCAT", "Category for Protocol Deviation", "string", None),
    ("DVSTDTC", "Start Date/Time of Deviation", "date", None),
];

pub fn columns() -> Vec<Column> {
    VARIABLES
        .iter()
        .map(|(name, label, data_type, key_sequence)| Column {
            item_oid: format!("IT.DV.{name}"),
            name,
            label,
            data_type,
            key_sequence: *key_sequence,
        })
        .collect()
}

pub fn column_names() -> Vec<String> {
    VARIABLES
        .iter()
        .map(|(name, ..)| name.to_string())
        .collect()
}

/// The Dataset-JSON 1.1 document, its top-level members in the order the standard lists
/// them (the schema allows no others).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatasetJson {
    #[serde(rename = "datasetJSONCreationDateTime")]
    pub dataset_json_creation_date_time: String,
    #[serde(rename = "datasetJSONVersion")]
    pub dataset_json_version: &'static str,
    pub originator: String,
    pub source_system: SourceSystem,
    #[serde(rename = "studyOID")]
    pub study_oid: String,
    #[serde(rename = "itemGroupOID")]
    pub item_group_oid: &'static str,
    pub records: usize,
    pub name: &'static str,
    pub label: &'static str,
    pub columns: Vec<Column>,
    /// One array per record, in column order; `null` for a missing value.
    #[schema(schema_with = rows_schema)]
    pub rows: Vec<Vec<Value>>,
}

/// A row's cells are a column's value: a string, a number (`DVSEQ`) or `null`.
fn rows_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    let cell = ObjectBuilder::new().schema_type(SchemaType::from_iter([
        Type::String,
        Type::Number,
        Type::Null,
    ]));
    ArrayBuilder::new()
        .items(ArrayBuilder::new().items(cell))
        .description(Some(
            "One array per record, in column order; `null` for a missing value.",
        ))
        .build()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceSystem {
    pub name: &'static str,
    pub version: &'static str,
}

/// The DV table: rows in column order, and how many deviations were left out.
#[derive(Debug)]
pub struct DvTable {
    pub rows: Vec<Vec<Value>>,
    pub excluded: usize,
}

/// `DVDECOD`: the category in upper-case words (`informed_consent` -> `INFORMED CONSENT`).
pub fn decoded_term(category: DeviationCategory) -> String {
    category.as_ref().replace('_', " ").to_uppercase()
}

pub fn dv_category(importance: DeviationImportance) -> &'static str {
    match importance {
        DeviationImportance::Important => "IMPORTANT",
        DeviationImportance::NotImportant => "NON-IMPORTANT",
    }
}

/// `USUBJID`: `{STUDYID}-{site number}-{participant}`, unless the participant code already
/// starts with `{STUDYID}-` (it is unique in the study then).
pub fn usubjid(studyid: &str, site_number: &str, participant: &str) -> String {
    if participant.starts_with(&format!("{studyid}-")) {
        participant.to_string()
    } else {
        format!("{studyid}-{site_number}-{participant}")
    }
}

/// Within a subject: `occurred_on`, then `external_id` with missing ones last, then id.
fn sequence_order(a: &Source, b: &Source) -> Ordering {
    a.occurred_on
        .cmp(&b.occurred_on)
        .then_with(|| match (&a.external_id, &b.external_id) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
        .then_with(|| a.id.cmp(&b.id))
}

pub fn table(studyid: &str, deviations: Vec<Source>) -> DvTable {
    let total = deviations.len();
    let mut kept: Vec<(String, Source)> = deviations
        .into_iter()
        .filter(|d| d.status != DeviationStatus::Invalidated)
        .filter_map(|d| {
            let subject = usubjid(studyid, &d.site_number, d.participant_ref.as_deref()?);
            Some((subject, d))
        })
        .collect();
    let excluded = total - kept.len();
    kept.sort_by(|(s1, a), (s2, b)| s1.cmp(s2).then_with(|| sequence_order(a, b)));
    let mut rows = Vec::with_capacity(kept.len());
    let mut previous: Option<&str> = None;
    let mut seq = 0_i64;
    for (subject, d) in &kept {
        seq = if previous == Some(subject.as_str()) {
            seq + 1
        } else {
            1
        };
        previous = Some(subject);
        rows.push(vec![
            json!(studyid),
            json!("DV"),
            json!(subject),
            json!(seq),
            json!(d.id.to_string()),
            d.external_id.as_ref().map_or(Value::Null, |id| json!(id)),
            json!(d.description),
            json!(decoded_term(d.category)),
            json!(dv_category(d.importance)),
            json!(d.occurred_on.to_string()),
        ]);
    }
    DvTable { rows, excluded }
}

pub fn dataset(
    studyid: &str,
    originator: &str,
    rows: Vec<Vec<Value>>,
    created: DateTime<Utc>,
) -> DatasetJson {
    DatasetJson {
        dataset_json_creation_date_time: created.to_rfc3339_opts(SecondsFormat::Secs, true),
        dataset_json_version: "1.1.0",
        originator: originator.to_string(),
        source_system: SourceSystem {
            name: "TrialOps",
            version: env!("CARGO_PKG_VERSION"),
        },
        study_oid: studyid.to_string(),
        item_group_oid: "IG.DV",
        records: rows.len(),
        name: "DV",
        label: "Protocol Deviations",
        columns: columns(),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use uuid::Uuid;

    fn source(participant: Option<&str>, occurred: u32, external: Option<&str>) -> Source {
        Source {
            id: Uuid::now_v7().into(),
            external_id: external.map(str::to_string),
            site_number: "001".into(),
            participant_ref: participant.map(str::to_string),
            description: "d".into(),
            category: DeviationCategory::InformedConsent,
            importance: DeviationImportance::Important,
            occurred_on: NaiveDate::from_ymd_opt(2026, 1, occurred).unwrap(),
            status: DeviationStatus::Open,
        }
    }

    #[test]
    fn subject_ids_are_prefixed_once() {
        assert_eq!(usubjid("P-1", "001", "0042"), "P-1-001-0042");
        assert_eq!(usubjid("P-1", "001", "P-1-001-0042"), "P-1-001-0042");
        assert_eq!(usubjid("P-1", "001", "P-10-1"), "P-1-001-P-10-1");
    }

    #[test]
    fn codes_follow_the_mapping() {
        assert_eq!(
            decoded_term(DeviationCategory::InformedConsent),
            "INFORMED CONSENT"
        );
        assert_eq!(decoded_term(DeviationCategory::Other), "OTHER");
        assert_eq!(
            dv_category(DeviationImportance::NotImportant),
            "NON-IMPORTANT"
        );
    }

    #[test]
    fn sequence_is_per_subject_by_date_then_external_id_missing_last() {
        let mut invalidated = source(Some("A"), 1, None);
        invalidated.status = DeviationStatus::Invalidated;
        let deviations = vec![
            source(Some("B"), 5, None),
            source(Some("A"), 3, None),
            source(Some("A"), 3, Some("X-2")),
            source(Some("A"), 1, Some("X-9")),
            source(None, 1, None),
            invalidated,
        ];
        let table = table("P", deviations);
        assert_eq!(table.excluded, 2);
        let keys: Vec<(String, i64, Value)> = table
            .rows
            .iter()
            .map(|row| {
                (
                    row[2].as_str().unwrap().to_string(),
                    row[3].as_i64().unwrap(),
                    row[5].clone(),
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("P-001-A".to_string(), 1, json!("X-9")),
                ("P-001-A".to_string(), 2, json!("X-2")),
                ("P-001-A".to_string(), 3, Value::Null),
                ("P-001-B".to_string(), 1, Value::Null),
            ]
        );
        assert!(table.rows.iter().all(|row| row.len() == columns().len()));
    }
}
