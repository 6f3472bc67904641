//! The demo portfolio as records, before anything is written: every writable field of
//! every record, with dates relative to `today` (so the curve, the forecast and the
//! signals look current) and numbers from a seeded RNG (so two runs on the same day plan
//! the same portfolio). Pure: `demo::load` writes it through the normal write path.
//!
//! Records that point at one another hold the other's index in the plan (`site`,
//! `vendor`); ids are filled in as the records are written.

use chrono::{Datelike, Days, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Poisson};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::db::budget_lines::BudgetLineFields;
use crate::db::deviations::DeviationFields;
use crate::db::expenses::ExpenseFields;
use crate::db::milestones::MilestoneFields;
use crate::db::risks::RiskFields;
use crate::db::sites::SiteFields;
use crate::db::studies::StudyFields;
use crate::db::vendors::VendorFields;
use crate::demo::catalog::{
    CLEARVIEW, HELIX, HUAXIA, KESTREL, LUMEN, MERIDIAN, NORTHWIND, STUDIES, StudySpec, VENDORS,
};
use crate::domain::enrollment::EnrollmentCounts;
use crate::domain::enums::{
    BudgetCategory, DeviationCategory, DeviationImportance, DeviationStatus, MilestoneKind,
    MilestoneStatus, RiskCategory, RiskStatus, SiteStatus,
};
use crate::domain::ids::{SiteId, StudyId, VendorId};
use crate::domain::money::Money;
use crate::domain::studies::{
    DEFAULT_DEVIATION_REPORTING_DAYS, DEFAULT_FORECAST_CONFIDENCE_THRESHOLD,
    DEFAULT_RISK_ESCALATION_THRESHOLD,
};

use MilestoneKind as K;
use MilestoneStatus as M;

/// The seed of every run: the same portfolio each time.
const SEED: u64 = 14;
/// Weeks of enrollment history, ending with last week (the current week is not over).
pub const HISTORY_WEEKS: i64 = 104;
/// Placeholder for an id filled in when the record it names is written.
const LATER: Uuid = Uuid::nil();

pub struct Portfolio {
    pub vendors: Vec<VendorFields>,
    pub studies: Vec<StudyPlan>,
}

pub struct StudyPlan {
    pub fields: StudyFields,
    pub sites: Vec<SitePlan>,
    pub milestones: Vec<Linked<MilestoneFields>>,
    pub budget: Vec<LinePlan>,
    pub risks: Vec<Linked<RiskFields>>,
    pub deviations: Vec<Linked<DeviationFields>>,
}

pub struct SitePlan {
    pub fields: SiteFields,
    pub cro_vendor: Option<usize>,
    /// The site's weekly reports, oldest first.
    pub weeks: Vec<(NaiveDate, EnrollmentCounts)>,
}

/// A record naming a site and a vendor of the plan by index.
pub struct Linked<F> {
    pub fields: F,
    pub site: Option<usize>,
    pub vendor: Option<usize>,
}

/// The fields of a record that names its study, a site and a vendor.
pub trait Links {
    fn link(&mut self, study: StudyId, site: Option<SiteId>, vendor: Option<VendorId>);
}

impl Links for MilestoneFields {
    fn link(&mut self, study: StudyId, site: Option<SiteId>, vendor: Option<VendorId>) {
        self.study_id = study;
        self.site_id = site;
        self.vendor_id = vendor;
    }
}

impl Links for RiskFields {
    fn link(&mut self, study: StudyId, site: Option<SiteId>, vendor: Option<VendorId>) {
        self.study_id = study;
        self.site_id = site;
        self.vendor_id = vendor;
    }
}

impl<F: Links> Linked<F> {
    /// The fields linked to `study` and to the site and vendor the plan's indexes name
    /// once they exist (`site`, `vendor`: an index to its id).
    pub fn into_fields(
        self,
        study: StudyId,
        site: impl Fn(Option<usize>) -> Option<SiteId>,
        vendor: impl Fn(Option<usize>) -> Option<VendorId>,
    ) -> F {
        let mut fields = self.fields;
        fields.link(study, site(self.site), vendor(self.vendor));
        fields
    }
}

pub struct LinePlan {
    pub fields: BudgetLineFields,
    pub vendor: Option<usize>,
    pub expenses: Vec<ExpenseFields>,
}

impl Portfolio {
    /// The number of records the plan writes.
    pub fn records(&self) -> usize {
        self.vendors.len()
            + self
                .studies
                .iter()
                .map(|s| {
                    1 + s.sites.len()
                        + s.sites.iter().map(|site| site.weeks.len()).sum::<usize>()
                        + s.milestones.len()
                        + s.budget.len()
                        + s.budget.iter().map(|l| l.expenses.len()).sum::<usize>()
                        + s.risks.len()
                        + s.deviations.len()
                })
                .sum::<usize>()
    }
}

fn monday_of(day: NaiveDate) -> NaiveDate {
    day - Days::new(u64::from(day.weekday().num_days_from_monday()))
}

/// `day` moved by `weeks` (negative: back).
fn weeks(day: NaiveDate, weeks: i64) -> NaiveDate {
    days(day, weeks * 7)
}

fn days(day: NaiveDate, days: i64) -> NaiveDate {
    day.checked_add_signed(chrono::Duration::days(days))
        .unwrap_or(day)
}

fn poisson(rng: &mut StdRng, mean: f64) -> i32 {
    if mean <= 0.0 {
        return 0;
    }
    Poisson::new(mean).map_or(0, |p| p.sample(rng) as i32)
}

fn money(amount: Decimal) -> Money {
    Money::from(amount.round_dp(2))
}

fn text(s: &str) -> Option<String> {
    Some(s.to_string())
}

/// The whole portfolio as of `today`.
pub fn portfolio(today: NaiveDate) -> Portfolio {
    let mut rng = StdRng::seed_from_u64(SEED);
    let vendors = VENDORS
        .iter()
        .map(|v| VendorFields {
            external_id: None,
            name: v.name.into(),
            kind: v.kind,
            status: v.status,
            country: text(v.country),
            contact_email: text(v.contact_email),
            qualified_on: Some(weeks(today, -i64::from(v.qualified_weeks_ago))),
        })
        .collect();
    let studies = STUDIES
        .iter()
        .enumerate()
        .map(|(index, spec)| study(&mut rng, today, index, spec))
        .collect();
    Portfolio { vendors, studies }
}

/// Week `w` of the history (0 = the oldest; `HISTORY_WEEKS - 1` = last week).
fn week_start(today: NaiveDate, w: i64) -> NaiveDate {
    weeks(monday_of(today), w - HISTORY_WEEKS)
}

fn study(rng: &mut StdRng, today: NaiveDate, index: usize, spec: &StudySpec) -> StudyPlan {
    let monday = monday_of(today);
    let planned_start = weeks(monday, -spec.start_weeks_ago);
    let planned_end = weeks(monday, spec.end_weeks_ahead);
    let fields = StudyFields {
        external_id: text(spec.marker),
        protocol_number: spec.protocol_number.into(),
        title: spec.title.into(),
        short_title: text(spec.short_title),
        phase: spec.phase,
        status: spec.status,
        therapeutic_area: text(spec.therapeutic_area),
        indication: text(spec.indication),
        sponsor_name: text(spec.sponsor_name),
        nct_id: spec.nct_id.map(str::to_string),
        euct_number: None,
        ind_number: None,
        currency: spec.currency.into(),
        target_enrollment: spec.target_enrollment,
        enrollment_buffer_pct: spec.enrollment_buffer_pct,
        planned_start_date: Some(planned_start),
        planned_end_date: Some(planned_end),
        actual_start_date: Some(days(planned_start, 10)),
        actual_end_date: None,
        risk_escalation_threshold: DEFAULT_RISK_ESCALATION_THRESHOLD,
        deviation_reporting_days: DEFAULT_DEVIATION_REPORTING_DAYS,
        forecast_confidence_threshold: DEFAULT_FORECAST_CONFIDENCE_THRESHOLD,
    };
    let sites = sites(rng, today, index, spec);
    let first_in = sites
        .iter()
        .flat_map(|s| s.weeks.iter())
        .filter(|(_, c)| c.enrolled > 0)
        .map(|(week, _)| *week)
        .min();
    let milestones = milestones(today, index, planned_start, planned_end, first_in);
    let budget = budget(rng, today, index, spec, planned_start, planned_end);
    let risks = risks(today, index, &sites);
    let deviations = deviations(rng, today, index, &sites);
    StudyPlan {
        fields,
        sites,
        milestones,
        budget,
        risks,
        deviations,
    }
}

/// What happens to one site over the history.
#[derive(Clone, Copy, PartialEq)]
enum Course {
    /// Activates about when planned (a few weeks late at most) and enrolls.
    OnTime,
    /// Activates 8 to 20 weeks after its planned date, then enrolls.
    Late,
    /// Activated, reports every week, screens a few, and never enrolls anyone.
    NeverEnrolls,
    /// Still `selected`, its planned activation passed this many weeks ago.
    Overdue(i64),
    /// Still `planned`, to activate this many weeks from now.
    Upcoming(i64),
}

fn course(study: usize, site: usize) -> Course {
    match (study, site) {
        (0, 8) => Course::NeverEnrolls,
        (0, 19) => Course::Overdue(6),
        (1, 27) => Course::Overdue(2),
        (1, 26) => Course::Upcoming(4),
        (0, 3 | 11) | (1, 4 | 12 | 18 | 22) | (2, 10) => Course::Late,
        _ => Course::OnTime,
    }
}

fn site_number(country: &str, study: usize, n: usize) -> String {
    if study == 0 {
        format!("{country}-{:03}", n + 1)
    } else {
        format!("{country}-{:02}", n + 1)
    }
}

fn sites(rng: &mut StdRng, today: NaiveDate, study: usize, spec: &StudySpec) -> Vec<SitePlan> {
    let count = spec.sites.len() as i64;
    let mut per_country: Vec<(&str, usize)> = Vec::new();
    let mut plans = Vec::new();
    // Activation planned over the first 40 weeks of the history, in catalogue order.
    for (i, s) in spec.sites.iter().enumerate() {
        let n = match per_country.iter_mut().find(|(c, _)| *c == s.country) {
            Some((_, n)) => {
                *n += 1;
                *n - 1
            }
            None => {
                per_country.push((s.country, 1));
                0
            }
        };
        let course = course(study, i);
        let planned_week = 3 + (i as i64) * 40 / count;
        let (planned, activated) = match course {
            Course::OnTime | Course::NeverEnrolls => {
                (planned_week, Some(planned_week + rng.gen_range(0..=3)))
            }
            Course::Late => (planned_week, Some(planned_week + rng.gen_range(8..=20))),
            Course::Overdue(w) => (HISTORY_WEEKS - w, None),
            Course::Upcoming(w) => (HISTORY_WEEKS + w, None),
        };
        let activated_on = activated.map(|w| days(week_start(today, w), 2));
        let status = match course {
            Course::Overdue(_) => SiteStatus::Selected,
            Course::Upcoming(_) => SiteStatus::Planned,
            _ => SiteStatus::Enrolling,
        };
        let irb_weeks = if activated.is_some() { 5 } else { 3 };
        let fields = SiteFields {
            external_id: None,
            study_id: LATER.into(),
            site_number: site_number(s.country, study, n),
            name: s.name.into(),
            institution: None,
            principal_investigator: s.investigator.map(str::to_string),
            country: s.country.into(),
            city: text(s.city),
            status,
            irb_approved_on: match course {
                Course::Upcoming(_) => None,
                _ => Some(week_start(today, activated.unwrap_or(planned) - irb_weeks)),
            },
            activated_on,
            target_enrollment: Some(
                (spec.target_enrollment + spec.sites.len() as i32 - 1) / spec.sites.len() as i32,
            ),
            cro_vendor_id: None,
            planned_activation_on: Some(week_start(today, planned)),
        };
        let rate = rng.gen_range(spec.site_rate.0..spec.site_rate.1);
        plans.push((fields, activated, rate, course));
    }
    let weeks = enrollment(rng, today, spec, &plans);
    let cro = match study {
        0 => Some(HUAXIA),
        1 => Some(MERIDIAN),
        _ => None,
    };
    plans
        .into_iter()
        .zip(weeks)
        .map(|((mut fields, ..), weeks)| {
            if spec.closes_at_target && !weeks.is_empty() {
                fields.status = SiteStatus::ClosedToEnrollment;
            }
            SitePlan {
                fields,
                cro_vendor: cro,
                weeks,
            }
        })
        .collect()
}

/// Weekly counts of every site, week by week across the study (so a study that closes at
/// its target stops in the week it reaches it).
fn enrollment(
    rng: &mut StdRng,
    today: NaiveDate,
    spec: &StudySpec,
    sites: &[(SiteFields, Option<i64>, f64, Course)],
) -> Vec<Vec<(NaiveDate, EnrollmentCounts)>> {
    let mut reports = vec![Vec::new(); sites.len()];
    let mut enrolled_by_week = vec![vec![0i32; HISTORY_WEEKS as usize]; sites.len()];
    let mut on_study = vec![0i32; sites.len()];
    let mut total = 0;
    for w in 0..HISTORY_WEEKS {
        if spec.closes_at_target && total >= spec.target_enrollment {
            break;
        }
        for (i, (_, activated, rate, course)) in sites.iter().enumerate() {
            let Some(active_from) = activated.filter(|a| *a <= w) else {
                continue;
            };
            // New sites ramp up over their first six weeks.
            let ramp = (((w - active_from + 1) as f64) / 6.0).min(1.0);
            let mut enrolled = if *course == Course::NeverEnrolls {
                0
            } else {
                poisson(rng, rate * ramp)
            };
            if spec.closes_at_target {
                enrolled = enrolled.min(spec.target_enrollment - total);
            }
            let screen_failed = if *course == Course::NeverEnrolls {
                poisson(rng, 0.3)
            } else {
                poisson(rng, rate * ramp * spec.screen_fail_ratio)
            };
            let completed = match spec.treatment_weeks {
                Some(t) if w as usize >= t => enrolled_by_week[i][w as usize - t].min(on_study[i]),
                _ => 0,
            };
            let discontinued = poisson(rng, f64::from(on_study[i] - completed) * 0.006)
                .min(on_study[i] - completed);
            on_study[i] += enrolled - completed - discontinued;
            enrolled_by_week[i][w as usize] = enrolled;
            total += enrolled;
            reports[i].push((
                week_start(today, w),
                EnrollmentCounts {
                    screened: enrolled + screen_failed,
                    screen_failed,
                    enrolled,
                    discontinued,
                    completed,
                },
            ));
        }
    }
    // Only one site never enrolls: a slow one that drew nothing gets one participant.
    for (i, (_, _, _, course)) in sites.iter().enumerate() {
        let weeks = &mut reports[i];
        if *course != Course::NeverEnrolls
            && !weeks.is_empty()
            && weeks.iter().all(|(_, c)| c.enrolled == 0)
        {
            let middle = weeks.len() / 2;
            weeks[middle].1.enrolled += 1;
            weeks[middle].1.screened += 1;
        }
    }
    reports
}

/// A vendor deliverable: (study, name, vendor, baseline, forecast, actual, status), dates
/// in weeks from this week's Monday (negative: past).
type Deliverable = (
    usize,
    &'static str,
    usize,
    i64,
    Option<i64>,
    Option<i64>,
    MilestoneStatus,
);

/// Vendor deliverables, on time and slipping.
const DELIVERABLES: &[Deliverable] = &[
    (
        0,
        "KRAS G12C central testing validated",
        HELIX,
        -98,
        Some(-91),
        Some(-91),
        M::Completed,
    ),
    (
        0,
        "Central imaging read charter",
        CLEARVIEW,
        -96,
        Some(-96),
        Some(-97),
        M::Completed,
    ),
    (
        0,
        "Blinded independent central review, interim read",
        CLEARVIEW,
        3,
        Some(8),
        None,
        M::AtRisk,
    ),
    (
        1,
        "IRT go-live",
        KESTREL,
        -104,
        Some(-104),
        Some(-104),
        M::Completed,
    ),
    (
        1,
        "IRT cohort 2 release",
        KESTREL,
        -30,
        Some(-30),
        Some(-31),
        M::Completed,
    ),
    (
        1,
        "Central lab kit resupply, wave 3",
        HELIX,
        -3,
        Some(2),
        None,
        M::AtRisk,
    ),
    (
        1,
        "Spirometry over-read charter v2",
        CLEARVIEW,
        4,
        Some(9),
        None,
        M::InProgress,
    ),
    (
        1,
        "Monitoring plan v3",
        MERIDIAN,
        -20,
        Some(-20),
        Some(-21),
        M::Completed,
    ),
    (
        2,
        "Drug depot resupply, Q3",
        NORTHWIND,
        -12,
        Some(-12),
        Some(-12),
        M::Completed,
    ),
    (
        2,
        "eCOA data transfer 4",
        LUMEN,
        2,
        Some(2),
        None,
        M::InProgress,
    ),
];

fn milestones(
    today: NaiveDate,
    study: usize,
    start: NaiveDate,
    end: NaiveDate,
    first_in: Option<NaiveDate>,
) -> Vec<Linked<MilestoneFields>> {
    let monday = monday_of(today);
    let rel = |w: i64| weeks(monday, w);
    let since = |d: NaiveDate, w: i64| weeks(d, w);
    // Reached on time or nearly, in weeks from the planned start: baseline, actual.
    let reached = |name: &'static str, kind: K, baseline: i64, actual: i64| {
        let actual = Some(since(start, actual));
        (name, kind, since(start, baseline), actual, M::Completed)
    };
    let mut list = vec![
        reached("Final protocol v1.0", K::ProtocolFinal, -16, -17),
        reached("Regulatory submission", K::RegulatorySubmission, -12, -11),
        reached("Regulatory approval", K::RegulatoryApproval, -4, -2),
        (
            "First patient in",
            K::FirstPatientIn,
            since(start, 4),
            first_in,
            M::Completed,
        ),
        reached("Half of the sites activated", K::SiteActivation, 18, 23),
    ];
    let (lpi_baseline, lpi_actual, lpi_status) = if study == 2 {
        (rel(-16), Some(rel(-14)), M::Completed)
    } else {
        (weeks(end, -20), None, M::InProgress)
    };
    list.push((
        "Last patient in",
        K::LastPatientIn,
        lpi_baseline,
        lpi_actual,
        lpi_status,
    ));
    list.push((
        "Database lock",
        K::DatabaseLock,
        weeks(end, 6),
        None,
        M::Planned,
    ));
    let mut out: Vec<Linked<MilestoneFields>> = list
        .into_iter()
        .map(|(name, kind, baseline, actual, status)| {
            let status = if actual.is_none() && status == M::Completed {
                M::InProgress
            } else {
                status
            };
            let dates = [Some(baseline), actual.or(Some(baseline)), actual];
            Linked {
                fields: milestone(name, kind, dates, status, text("Clinical operations")),
                site: None,
                vendor: None,
            }
        })
        .collect();
    for &(_, name, vendor, baseline, forecast, actual, status) in
        DELIVERABLES.iter().filter(|d| d.0 == study)
    {
        let dates = [Some(rel(baseline)), forecast.map(rel), actual.map(rel)];
        let owner = VENDORS.get(vendor).map(|v| v.name.to_string());
        out.push(Linked {
            fields: MilestoneFields {
                notes: (status == M::AtRisk)
                    .then(|| "Vendor reported a delay; recovery plan requested".to_string()),
                ..milestone(name, K::VendorDeliverable, dates, status, owner)
            },
            site: None,
            vendor: Some(vendor),
        });
    }
    out
}

/// A milestone of the demo, not yet linked to its study (`LATER`), site or vendor, with
/// its baseline, forecast and actual dates.
fn milestone(
    name: &str,
    kind: K,
    [baseline, forecast, actual]: [Option<NaiveDate>; 3],
    status: M,
    owner: Option<String>,
) -> MilestoneFields {
    MilestoneFields {
        external_id: None,
        study_id: LATER.into(),
        site_id: None,
        vendor_id: None,
        name: name.into(),
        kind,
        baseline_date: baseline,
        forecast_date: forecast,
        actual_date: actual,
        status,
        owner,
        notes: None,
    }
}

/// Budget lines: (category, description, vendor, planned amount in whole units).
fn lines(study: usize) -> Vec<(BudgetCategory, &'static str, Option<usize>, i64)> {
    use BudgetCategory as B;
    match study {
        0 => vec![
            (
                B::SitePayments,
                "Investigator grants and per-patient fees",
                None,
                9_600_000,
            ),
            (
                B::CroServices,
                "Huaxia: monitoring and project management",
                Some(HUAXIA),
                7_800_000,
            ),
            (
                B::Lab,
                "Helix: KRAS G12C central testing",
                Some(HELIX),
                2_400_000,
            ),
            (
                B::VendorServices,
                "ClearView: central imaging reads",
                Some(CLEARVIEW),
                3_000_000,
            ),
        ],
        1 => vec![
            (
                B::SitePayments,
                "Investigator grants and per-patient fees",
                None,
                4_800_000,
            ),
            (
                B::CroServices,
                "Meridian: monitoring and project management",
                Some(MERIDIAN),
                3_200_000,
            ),
            (B::Lab, "Helix: central laboratory", Some(HELIX), 900_000),
            (
                B::DrugSupply,
                "Comparator, packaging and IRT",
                Some(KESTREL),
                1_100_000,
            ),
            (
                B::PassThrough,
                "Patient travel reimbursement",
                None,
                250_000,
            ),
        ],
        _ => vec![
            (
                B::SitePayments,
                "Investigator grants and per-patient fees",
                None,
                1_500_000,
            ),
            (
                B::VendorServices,
                "Lumen: eCOA licences and devices",
                Some(LUMEN),
                300_000,
            ),
            (
                B::DrugSupply,
                "Northwind: depot and distribution",
                Some(NORTHWIND),
                400_000,
            ),
            (
                B::PassThrough,
                "Patient travel reimbursement",
                None,
                120_000,
            ),
        ],
    }
}

/// Each line's expenses: one invoice a month from the actual start to last month, the
/// time-proportional share of the plan times the study's burn for the line, +-20%.
fn budget(
    rng: &mut StdRng,
    today: NaiveDate,
    study: usize,
    spec: &StudySpec,
    start: NaiveDate,
    end: NaiveDate,
) -> Vec<LinePlan> {
    let months_planned = Decimal::from((end - start).num_days()) / Decimal::new(30_436_875, 6);
    lines(study)
        .into_iter()
        .enumerate()
        .map(|(i, (category, description, vendor, planned))| {
            let planned = Decimal::from(planned);
            let burn = Decimal::from(spec.burn_pct.get(i).copied().unwrap_or(100));
            let monthly = planned / months_planned * burn / Decimal::ONE_HUNDRED;
            let mut expenses = Vec::new();
            let mut month = NaiveDate::from_ymd_opt(start.year(), start.month(), 28);
            let mut n = 1;
            while let Some(on) = month.filter(|on| *on < today - Days::new(3)) {
                let noise = Decimal::from(rng.gen_range(80..=120)) / Decimal::ONE_HUNDRED;
                expenses.push(ExpenseFields {
                    external_id: None,
                    budget_line_id: LATER.into(),
                    amount: money(monthly * noise),
                    currency: None,
                    incurred_on: on,
                    invoice_number: Some(format!("{}-{}-{:03}", spec.protocol_number, i + 1, n)),
                    description: Some(format!("{description}, {}", on.format("%B %Y"))),
                });
                n += 1;
                month = on.checked_add_months(chrono::Months::new(1));
            }
            LinePlan {
                fields: BudgetLineFields {
                    external_id: None,
                    study_id: LATER.into(),
                    vendor_id: None,
                    category,
                    description: description.into(),
                    planned_amount: money(planned),
                    committed_amount: money(planned * Decimal::new(85, 2)),
                    currency: None,
                },
                vendor,
                expenses,
            }
        })
        .collect()
}

/// Risks: (title, category, likelihood, impact, detectability, status, site, vendor,
/// review due in weeks). A score of 45 or more escalates on creation.
type RiskSpec = (
    &'static str,
    RiskCategory,
    i32,
    i32,
    i32,
    RiskStatus,
    Option<usize>,
    Option<usize>,
    i64,
);

fn risk_specs(study: usize) -> Vec<RiskSpec> {
    use RiskCategory as C;
    use RiskStatus as S;
    match study {
        0 => vec![
            (
                "Low KRAS G12C pre-screening yield",
                C::Recruitment,
                4,
                4,
                3,
                S::Open,
                None,
                None,
                2,
            ),
            (
                "Central imaging read backlog",
                C::Vendor,
                3,
                3,
                3,
                S::Mitigating,
                None,
                Some(CLEARVIEW),
                -2,
            ),
            (
                "Hepatotoxicity monitoring not done per protocol",
                C::PatientSafety,
                2,
                5,
                3,
                S::Open,
                None,
                None,
                4,
            ),
            (
                "Export approval for biological samples",
                C::Regulatory,
                3,
                4,
                2,
                S::Accepted,
                None,
                None,
                8,
            ),
            (
                "Site not enrolling despite screening",
                C::Recruitment,
                4,
                3,
                2,
                S::Mitigating,
                Some(8),
                None,
                -1,
            ),
        ],
        1 => vec![
            (
                "Central lab kit shortages at EU sites",
                C::Supply,
                4,
                4,
                3,
                S::Open,
                None,
                Some(HELIX),
                1,
            ),
            (
                "Site payments running ahead of budget",
                C::Budget,
                4,
                3,
                4,
                S::Open,
                None,
                None,
                2,
            ),
            (
                "Spirometry quality varies across sites",
                C::DataIntegrity,
                3,
                3,
                4,
                S::Open,
                None,
                Some(CLEARVIEW),
                -3,
            ),
            (
                "Enrollment slower than planned in Poland",
                C::Recruitment,
                3,
                3,
                3,
                S::Mitigating,
                Some(19),
                None,
                3,
            ),
            (
                "Outdated consent form version in use",
                C::Regulatory,
                2,
                4,
                2,
                S::Closed,
                None,
                None,
                -10,
            ),
            (
                "Rescue medication supply in Canada",
                C::Supply,
                2,
                3,
                2,
                S::Open,
                Some(27),
                Some(NORTHWIND),
                6,
            ),
        ],
        _ => vec![
            (
                "Loss to follow-up after enrollment closed",
                C::Operational,
                3,
                3,
                3,
                S::Open,
                None,
                None,
                4,
            ),
            (
                "eCOA device failures",
                C::Vendor,
                3,
                4,
                4,
                S::Open,
                None,
                Some(LUMEN),
                1,
            ),
            (
                "Off-label dosing documentation",
                C::Regulatory,
                2,
                4,
                3,
                S::Mitigating,
                None,
                None,
                -1,
            ),
        ],
    }
}

fn risks(today: NaiveDate, study: usize, sites: &[SitePlan]) -> Vec<Linked<RiskFields>> {
    risk_specs(study)
        .into_iter()
        .map(
            |(title, category, l, i, d, status, site, vendor, review)| Linked {
                fields: RiskFields {
                    external_id: None,
                    study_id: LATER.into(),
                    site_id: None,
                    vendor_id: None,
                    title: title.into(),
                    description: site
                        .and_then(|s| sites.get(s))
                        .map(|s| format!("Raised for site {}", s.fields.site_number)),
                    category,
                    likelihood: l,
                    impact: i,
                    detectability: d,
                    status,
                    owner: text("Study risk lead"),
                    mitigation_plan: text(
                        "Weekly review with the study team; actions in the RBQM log",
                    ),
                    contingency_plan: None,
                    review_due_on: Some(weeks(monday_of(today), review)),
                },
                site,
                vendor,
            },
        )
        .collect()
}

const DESCRIPTIONS: &[(DeviationCategory, &str)] = &[
    (
        DeviationCategory::InformedConsent,
        "Consent signed on a superseded version of the form",
    ),
    (
        DeviationCategory::Eligibility,
        "Participant randomised with an exclusion criterion met",
    ),
    (
        DeviationCategory::StudyProcedure,
        "Protocol-required assessment not performed at the visit",
    ),
    (
        DeviationCategory::InvestigationalProduct,
        "Investigational product stored outside its temperature range",
    ),
    (
        DeviationCategory::SafetyReporting,
        "Serious adverse event reported after the 24-hour window",
    ),
    (
        DeviationCategory::VisitSchedule,
        "Visit performed outside its window",
    ),
    (DeviationCategory::VisitSchedule, "Visit missed"),
    (
        DeviationCategory::DataManagement,
        "Source data not available for a recorded value",
    ),
    (
        DeviationCategory::StudyProcedure,
        "Laboratory sample collected at the wrong time point",
    ),
];

/// Deviations at the sites that enrolled, one per ~8 participants; about a third
/// important, some of those reported late (and one not reported yet).
fn deviations(
    rng: &mut StdRng,
    today: NaiveDate,
    study: usize,
    sites: &[SitePlan],
) -> Vec<Linked<DeviationFields>> {
    let enrolled: i32 = sites
        .iter()
        .flat_map(|s| s.weeks.iter())
        .map(|(_, c)| c.enrolled)
        .sum();
    let count = (enrolled / 8).max(4) as usize;
    let enrolling: Vec<usize> = (0..sites.len())
        .filter(|i| sites[*i].weeks.iter().any(|(_, c)| c.enrolled > 0))
        .collect();
    let late = match study {
        0 => 2,
        1 => 3,
        _ => 1,
    };
    let mut out = Vec::new();
    for n in 0..count {
        let Some(&site) = enrolling.get(rng.gen_range(0..enrolling.len().max(1))) else {
            break;
        };
        let plan = &sites[site];
        let first = plan.weeks.first().map_or(today, |(w, _)| *w);
        let last = plan.weeks.last().map_or(today, |(w, _)| *w);
        let span = (last - first).num_days().max(1);
        let occurred_on = days(first, rng.gen_range(0..span));
        // The most recent one: important, detected 12 days ago, still unreported.
        let unreported = n == count - 1;
        let occurred_on = if unreported {
            days(today, -15)
        } else {
            occurred_on
        };
        let detected_on = if unreported {
            days(occurred_on, 3)
        } else {
            days(occurred_on, rng.gen_range(0..=14)).min(days(today, -1))
        };
        let (category, description) = DESCRIPTIONS[rng.gen_range(0..DESCRIPTIONS.len())];
        let important = unreported || n < late || rng.gen_bool(0.3);
        let reported_on = if unreported {
            None
        } else if n < late {
            Some(days(detected_on, rng.gen_range(11..=25)))
        } else {
            Some(days(detected_on, rng.gen_range(0..=5)))
        }
        .map(|on| on.min(today));
        let age = (today - detected_on).num_days();
        let status = if unreported {
            DeviationStatus::Open
        } else if age > 90 {
            DeviationStatus::Closed
        } else if age > 30 {
            DeviationStatus::CapaInProgress
        } else {
            DeviationStatus::UnderReview
        };
        let capa = status != DeviationStatus::Open && status != DeviationStatus::UnderReview;
        let participant = 1 + rng.gen_range(0..plan.weeks.len().max(1) as u32 / 3 + 1);
        out.push(Linked {
            fields: DeviationFields {
                external_id: None,
                study_id: LATER.into(),
                site_id: LATER.into(),
                participant_ref: Some(format!("{}-{participant:04}", plan.fields.site_number)),
                category,
                description: description.into(),
                importance: if important {
                    DeviationImportance::Important
                } else {
                    DeviationImportance::NotImportant
                },
                occurred_on,
                detected_on,
                reported_on,
                irb_reported_on: reported_on
                    .filter(|_| important)
                    .map(|on| days(on, 2).min(today)),
                status,
                root_cause: capa.then(|| "Site staff unaware of the current procedure".into()),
                corrective_action: capa.then(|| "Retraining of the site team".into()),
                preventive_action: capa.then(|| "Checklist added to the visit worksheet".into()),
                capa_due_on: (status == DeviationStatus::CapaInProgress)
                    .then(|| days(detected_on, 60)),
            },
            site: Some(site),
            vendor: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use validator::Validate;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
    }

    #[test]
    fn the_same_day_plans_the_same_portfolio() {
        let (a, b) = (portfolio(today()), portfolio(today()));
        let weeks = |p: &Portfolio| -> Vec<Vec<(NaiveDate, EnrollmentCounts)>> {
            p.studies
                .iter()
                .flat_map(|s| s.sites.iter().map(|site| site.weeks.clone()))
                .collect()
        };
        assert_eq!(weeks(&a), weeks(&b));
        assert_eq!(a.records(), b.records());
    }

    #[test]
    fn every_record_passes_the_rules_of_its_post() {
        let p = portfolio(today());
        let valid = |record: &dyn Validate| record.validate().unwrap();
        p.vendors.iter().for_each(|v| valid(v));
        for s in &p.studies {
            valid(&s.fields);
            for site in &s.sites {
                valid(&site.fields);
                for (week, counts) in &site.weeks {
                    valid(counts);
                    crate::domain::enrollment::parse_week_start(&week.to_string(), today())
                        .unwrap();
                }
            }
            s.milestones.iter().for_each(|m| valid(&m.fields));
            s.risks.iter().for_each(|r| valid(&r.fields));
            for l in &s.budget {
                valid(&l.fields);
                l.expenses.iter().for_each(|e| valid(e));
            }
            for d in &s.deviations {
                valid(&d.fields);
                assert!(d.fields.detected_on <= today());
            }
        }
    }

    #[test]
    fn the_portfolio_has_what_the_demo_promises() {
        let p = portfolio(today());
        assert_eq!(p.studies.len(), 3);
        let sites: Vec<&SitePlan> = p.studies.iter().flat_map(|s| s.sites.iter()).collect();
        assert_eq!(sites.len(), 60);
        let mut countries: Vec<&str> = sites.iter().map(|s| s.fields.country.as_str()).collect();
        countries.sort_unstable();
        countries.dedup();
        assert!(countries.len() >= 10, "{countries:?}");
        let never: Vec<_> = sites
            .iter()
            .filter(|s| !s.weeks.is_empty() && s.weeks.iter().all(|(_, c)| c.enrolled == 0))
            .collect();
        assert_eq!(never.len(), 1, "exactly one site reports and never enrolls");
        let oldest = sites
            .iter()
            .filter_map(|s| s.weeks.first())
            .map(|(w, _)| *w)
            .min();
        assert!(oldest.is_some_and(|w| (today() - w).num_days() > 600));
        for s in &p.studies {
            let enrolled: i32 = s
                .sites
                .iter()
                .flat_map(|site| site.weeks.iter())
                .map(|(_, c)| c.enrolled)
                .sum();
            assert!(enrolled > s.fields.target_enrollment / 2, "{enrolled}");
            assert!(s.deviations.iter().any(|d| {
                d.fields.importance == DeviationImportance::Important
                    && d.fields
                        .reported_on
                        .is_some_and(|r| (r - d.fields.detected_on).num_days() > 7)
            }));
        }
    }
}
