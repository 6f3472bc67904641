//! `trialops demo`: a realistic portfolio in an empty database, so that Swagger UI, the
//! metrics, the curve, the forecast, the signals and the CSV exports have something to
//! show: three studies in different phases and states, 60 sites in 15 countries (some
//! activating late, one that never enrolls), two years of weekly enrollment, vendors with
//! on-time and slipping deliverables, budget lines with one study burning ahead of plan,
//! a risk register with escalated risks, and deviations, some important ones reported
//! late.
//!
//! Every record goes through the normal write path (`db::write::create`, as the POSTs and a
//! week's first `PUT` do, and `db::deviations::create`) after the same validation as its
//! request body, so each gets its audit event, its version and its place on the change
//! feed, attributed to the `demo` actor with a change reason. They are written in one
//! transaction (each record in its own savepoint, as the write path nests): the portfolio
//! is there whole or not at all, and a second run, which waits for the first on an
//! advisory lock, finds the studies' markers and adds nothing.

pub mod catalog;
pub mod plan;

use std::collections::HashMap;

use chrono::NaiveDate;
use diesel_async::AsyncConnection;
use serde::Serialize;
use validator::Validate;

use crate::audit::WriteContext;
use crate::db::budget_lines::BudgetLine;
use crate::db::enrollment::EnrollmentFields;
use crate::db::enrollment::EnrollmentReport;
use crate::db::expenses::Expense;
use crate::db::milestones::Milestone;
use crate::db::risks::Risk;
use crate::db::sites::Site;
use crate::db::studies::Study;
use crate::db::vendors::Vendor;
use crate::db::write::{self, lock_external_ids};
use crate::db::{self, Conn};
use crate::domain::enrollment::parse_week_start;
use crate::domain::enums::{EntityType, Role};
use crate::domain::ids::{SiteId, StudyId, VendorId};
use crate::error::ApiError;

/// The change reason on every demo record's audit event.
pub const REASON: &str = "demo portfolio loaded with trialops demo";

/// What a run did.
#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The portfolio was written.
    Loaded(Loaded),
    /// The demo's studies were already there: nothing was written.
    AlreadyLoaded { studies: Vec<DemoStudy> },
}

#[derive(Debug, Default, Serialize)]
pub struct Loaded {
    pub studies: Vec<DemoStudy>,
    pub vendors: usize,
    pub sites: usize,
    pub enrollment_reports: usize,
    pub milestones: usize,
    pub budget_lines: usize,
    pub expenses: usize,
    pub risks: usize,
    /// Risks whose score reached the study's threshold, escalated as they were created.
    pub escalated_risks: usize,
    pub deviations: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct DemoStudy {
    pub id: StudyId,
    pub protocol_number: String,
    pub title: String,
}

impl From<&Study> for DemoStudy {
    fn from(study: &Study) -> Self {
        Self {
            id: study.id,
            protocol_number: study.protocol_number.clone(),
            title: study.title.clone(),
        }
    }
}

/// The demo's writer: its own actor, so its records are told apart in the audit trail.
pub fn write_context() -> WriteContext {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    WriteContext {
        actor: "demo".into(),
        actor_name: format!("trialops demo (run by {user})"),
        role: Role::Admin,
        reason: Some(REASON.into()),
        request_id: None,
    }
}

/// Loads the portfolio as of `today`, unless its studies are already there.
pub async fn load(conn: &mut Conn, today: NaiveDate) -> Result<Outcome, ApiError> {
    let portfolio = plan::portfolio(today);
    let ctx = &write_context();
    conn.transaction::<_, ApiError, _>(async move |conn| {
        // A concurrent run waits here, then finds the markers.
        lock_external_ids(conn, EntityType::Study, &catalog::MARKERS).await?;
        let existing = db::studies::live_with_external_ids(conn, &catalog::MARKERS).await?;
        if !existing.is_empty() {
            return Ok(Outcome::AlreadyLoaded {
                studies: existing.iter().map(DemoStudy::from).collect(),
            });
        }
        Ok(Outcome::Loaded(
            write_portfolio(conn, ctx, portfolio, today).await?,
        ))
    })
    .await
}

/// Validates `fields` as their POST would, then writes them through `write::create`.
async fn create<R: write::Record>(
    conn: &mut Conn,
    ctx: &WriteContext,
    fields: R::Fields,
) -> Result<R, ApiError>
where
    R::Fields: Validate,
{
    fields.validate()?;
    write::create(conn, ctx, fields).await
}

async fn write_portfolio(
    conn: &mut Conn,
    ctx: &WriteContext,
    portfolio: plan::Portfolio,
    today: NaiveDate,
) -> Result<Loaded, ApiError> {
    let mut loaded = Loaded::default();
    let mut vendors: Vec<VendorId> = Vec::new();
    for fields in portfolio.vendors {
        let vendor: Vendor = create(conn, ctx, fields).await?;
        vendors.push(vendor.id);
    }
    loaded.vendors = vendors.len();
    let vendor = |index: Option<usize>| index.and_then(|i| vendors.get(i).copied());
    for plan in portfolio.studies {
        let study: Study = create(conn, ctx, plan.fields).await?;
        let study_id = study.id;
        let mut sites: HashMap<usize, SiteId> = HashMap::new();
        for (index, site_plan) in plan.sites.into_iter().enumerate() {
            let mut fields = site_plan.fields;
            fields.study_id = study.id;
            fields.cro_vendor_id = vendor(site_plan.cro_vendor);
            let site: Site = create(conn, ctx, fields).await?;
            sites.insert(index, site.id);
            loaded.sites += 1;
            // Each week is its report's first: `write::create`, the step `PUT` takes for a
            // week not reported yet. The rest of `db::enrollment::upsert` (a lock on the site,
            // an advisory lock per week, a look for the existing report) guards reports that
            // others may write at once; nobody else sees these sites before the commit, and
            // 4,000 advisory locks held by one transaction would crowd PostgreSQL's shared
            // lock table for every other session.
            for (week, counts) in site_plan.weeks {
                counts.validate()?;
                let week = parse_week_start(&week.to_string(), today)?;
                let fields = EnrollmentFields::new(study.id, site.id, week, &counts);
                let _: EnrollmentReport = write::create(conn, ctx, fields).await?;
                loaded.enrollment_reports += 1;
            }
        }
        let site = |index: Option<usize>| index.and_then(|i| sites.get(&i).copied());
        for linked in plan.milestones {
            let fields = linked.into_fields(study_id, site, vendor);
            let _: Milestone = create(conn, ctx, fields).await?;
            loaded.milestones += 1;
        }
        for line_plan in plan.budget {
            let mut fields = line_plan.fields;
            fields.study_id = study.id;
            fields.vendor_id = vendor(line_plan.vendor);
            let line: BudgetLine = create(conn, ctx, fields).await?;
            loaded.budget_lines += 1;
            for mut expense in line_plan.expenses {
                expense.budget_line_id = line.id;
                let _: Expense = create(conn, ctx, expense).await?;
                loaded.expenses += 1;
            }
        }
        for linked in plan.risks {
            let risk: Risk = create(conn, ctx, linked.into_fields(study_id, site, vendor)).await?;
            loaded.risks += 1;
            if risk.status == crate::domain::enums::RiskStatus::Escalated {
                loaded.escalated_risks += 1;
            }
        }
        for linked in plan.deviations {
            let mut fields = linked.fields;
            fields.study_id = study.id;
            fields.site_id = site(linked.site).ok_or(ApiError::NotFound)?;
            fields.validate()?;
            db::deviations::create(conn, ctx, fields).await?;
            loaded.deviations += 1;
        }
        loaded.studies.push(DemoStudy::from(&study));
    }
    Ok(loaded)
}
