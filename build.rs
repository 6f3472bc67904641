//! Tells utoipa that each id type of `domain::ids` is documented as a UUID, once, instead
//! of a `#[schema(value_type = Uuid)]` on every field and parameter of an id type (utoipa's
//! derive otherwise makes every named type a `$ref`). utoipa's `config` feature reads this
//! file from `OUT_DIR` while it expands the derives.

fn main() {
    let ids = [
        "StudyId",
        "SiteId",
        "VendorId",
        "MilestoneId",
        "BudgetLineId",
        "ExpenseId",
        "RiskId",
        "DeviationId",
        "EnrollmentReportId",
        "ClientId",
        "WebhookId",
        "DeliveryId",
    ];
    let mut config = utoipa_config::Config::new();
    for id in ids {
        config = config.alias_for(id, "uuid::Uuid");
    }
    config.write_to_file();
    println!("cargo::rerun-if-changed=build.rs");
}
