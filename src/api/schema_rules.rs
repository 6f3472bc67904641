//! A test, walking every property of every request body's published schema: any value the
//! document allows, the server's validators must allow too. So a rule a validator applies
//! (a length, a range, a pattern, a code list, the calendar) cannot be missing from the
//! document: a generated client that validates locally never sends what the server then
//! refuses. Rules between fields (date order, a role's scope) are no schema's to state
//! and are left out by their codes.

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};
    use utoipa::ToSchema;
    use validator::Validate;

    use crate::domain::json::{parse, schema_document, schema_errors};
    use crate::error::{ApiError, field_errors};

    /// Codes of rules between fields, which no schema states.
    const BETWEEN_FIELDS: &[&str] = &["order", "not_allowed"];

    fn probes() -> Vec<Value> {
        let mut probes: Vec<Value> = vec![
            Value::Null,
            json!(true),
            json!([]),
            json!({}),
            json!(["0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99"]),
            json!(["risk"]),
        ];
        for n in [
            -1i64,
            0,
            1,
            2,
            5,
            6,
            7,
            45,
            100,
            101,
            124,
            125,
            126,
            365,
            366,
            1000,
            1001,
            100_000,
            100_001,
            1_000_000,
            1_000_001,
            10_000_000,
            10_000_001,
            2_147_483_648,
        ] {
            probes.push(json!(n));
        }
        for x in [0.0, 0.5, 0.999, 1.0, 1.5] {
            probes.push(json!(x));
        }
        let mut texts: Vec<String> = [
            "",
            " ",
            "\t",
            "a",
            "x y",
            "a@b",
            "jane@example.com",
            "NCT01234567",
            "NCT1234567",
            "nct01234567",
            "2026-500123-12-00",
            "2026-400123-12-00",
            "DE",
            "de",
            "XX",
            "EUR",
            "eur",
            "XYZ",
            "2026-01-05",
            "2026-1-5",
            "1899-12-31",
            "1900-01-01",
            "2999-12-31",
            "3000-01-01",
            "2026-02-30",
            "0",
            "-1",
            "0.00",
            "-0",
            "0.01",
            "1.5",
            "1.555",
            "125000.00",
            "1e3",
            "1,000",
            "9999999999999",
            "999999999999.99",
            "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99",
            "not-a-uuid",
            "https://example.com/hook",
            "phase3",
            "open",
            "cro",
            "admin",
            "other",
            "planned",
            "important",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for n in [
            2, 3, 20, 21, 50, 51, 64, 65, 100, 101, 200, 201, 254, 255, 300, 301, 500, 501, 2000,
            2001, 10_000, 10_001,
        ] {
            texts.push("a".repeat(n));
        }
        probes.extend(texts.into_iter().map(Value::String));
        probes
    }

    /// Every probe the schema of `T` takes at a property of `base` must pass the server's
    /// own parsing and validators too; the failures, described.
    fn walk<T: DeserializeOwned + Validate + ToSchema>(base: Value) -> Vec<String> {
        let name = T::name().to_string();
        assert!(
            schema_errors::<T>(&base, "").is_empty(),
            "{name}: the base body must be valid: {:?}",
            schema_errors::<T>(&base, "")
        );
        assert!(
            parse::<T>(base.clone()).map(|t| t.validate()).is_ok(),
            "{name}"
        );
        let document = schema_document::<T>();
        let properties = document["components"]["schemas"][&name]["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert!(!properties.is_empty(), "{name} has no properties");
        let mut failures = Vec::new();
        for property in properties.keys() {
            for probe in probes() {
                let mut body = base.clone();
                body[property] = probe.clone();
                if !schema_errors::<T>(&body, "").is_empty() {
                    continue;
                }
                let refused = match parse::<T>(body) {
                    Err(ApiError::Validation(errors)) => errors,
                    Err(other) => vec![crate::error::FieldError::new(
                        property.clone(),
                        "other",
                        other.to_string(),
                    )],
                    Ok(value) => match value.validate() {
                        Ok(()) => Vec::new(),
                        Err(errors) => field_errors(&errors),
                    },
                };
                for error in refused {
                    if !BETWEEN_FIELDS.contains(&error.code.as_str()) && error.field == *property {
                        failures.push(format!(
                            "{name}.{property} = {probe}: the document allows it, the server says {} ({})",
                            error.code, error.message
                        ));
                    }
                }
            }
        }
        failures
    }

    #[test]
    fn every_rule_the_validators_apply_is_in_the_document() {
        use crate::db::{
            budget_lines::BudgetLineFields, deviations::DeviationFields, expenses::ExpenseFields,
            milestones::MilestoneFields, risks::RiskFields, sites::SiteFields,
            studies::StudyFields, vendors::VendorFields,
        };
        use crate::domain::enrollment::EnrollmentCounts;
        let id = "0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99";
        let mut failures = Vec::new();
        failures.extend(walk::<StudyFields>(json!({
            "protocol_number": "P-1", "title": "T", "phase": "phase3", "currency": "EUR",
            "target_enrollment": 10
        })));
        failures.extend(walk::<SiteFields>(json!({
            "study_id": id, "site_number": "1", "name": "N", "country": "DE"
        })));
        failures.extend(walk::<VendorFields>(json!({"name": "V", "kind": "cro"})));
        failures.extend(walk::<MilestoneFields>(json!({
            "study_id": id, "name": "M", "kind": "other"
        })));
        failures.extend(walk::<RiskFields>(json!({
            "study_id": id, "title": "R", "category": "other", "likelihood": 1, "impact": 1,
            "detectability": 1
        })));
        failures.extend(walk::<DeviationFields>(json!({
            "study_id": id, "site_id": id, "category": "other", "description": "D",
            "importance": "important", "occurred_on": "1900-01-01", "detected_on": "2999-12-31"
        })));
        failures.extend(walk::<BudgetLineFields>(json!({
            "study_id": id, "category": "other", "description": "B", "planned_amount": "1.00"
        })));
        failures.extend(walk::<ExpenseFields>(json!({
            "budget_line_id": id, "amount": "1.00", "incurred_on": "2026-01-05"
        })));
        failures.extend(walk::<EnrollmentCounts>(json!({
            "screened": 0, "screen_failed": 0, "enrolled": 0, "discontinued": 0, "completed": 0
        })));
        failures.extend(walk::<crate::auth::clients::NewClientRequest>(json!({
            "name": "C", "role": "admin"
        })));
        failures.extend(walk::<crate::api::webhooks::NewWebhook>(json!({
            "url": "https://example.com/hook", "entity_types": ["risk"]
        })));
        failures.extend(walk::<crate::api::audit_events::VerifyRequest>(json!({
            "checkpoints": []
        })));
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn schema_documents_compile() {
        use crate::domain::json::compile;
        fn check<T: ToSchema>() {
            let document = schema_document::<T>();
            assert!(
                compile(&document).is_ok(),
                "{}: {:?}",
                T::name(),
                compile(&document).err()
            );
        }
        check::<crate::db::studies::StudyFields>();
        check::<crate::db::sites::SiteFields>();
        check::<crate::db::vendors::VendorFields>();
        check::<crate::db::milestones::MilestoneFields>();
        check::<crate::db::risks::RiskFields>();
        check::<crate::db::deviations::DeviationFields>();
        check::<crate::db::budget_lines::BudgetLineFields>();
        check::<crate::db::expenses::ExpenseFields>();
        check::<crate::domain::enrollment::EnrollmentCounts>();
        check::<crate::auth::clients::NewClientRequest>();
        check::<crate::api::webhooks::NewWebhook>();
        check::<crate::api::audit_events::VerifyRequest>();
        check::<crate::api::keys::RotateRequest>();
    }
}
