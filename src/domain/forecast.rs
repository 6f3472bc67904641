//! The probabilistic enrollment forecast (issue 11): the Poisson-gamma recruitment model of
//! Anisimov & Fedorov (2007), as pure functions of the sites' data and the clock. Time is
//! in weeks, rates per week. The model, its assumptions and its measured error are in
//! `docs/metrics.md`; `db::forecast` reads the data, `api::forecast` answers it.
//!
//! Each site enrolls as a Poisson process whose rate is drawn from one gamma distribution
//! shared by the study's sites, Gamma(alpha, beta). A site with `k` enrolled over `t` weeks
//! has the posterior Gamma(alpha + k, beta + t); a site not yet active enrolls from its
//! planned activation with the prior. The future count by a horizon, a sum of negative
//! binomials with different scales, is approximated by one negative binomial with the same
//! mean and variance, whose tail is the regularized incomplete beta function.

use chrono::{Datelike, Days, NaiveDate};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Date, Nullable, Text};
use serde::Serialize;
use statrs::function::beta::checked_beta_reg;
use statrs::function::gamma::ln_gamma;
use utoipa::ToSchema;

use crate::domain::enums::SiteStatus;
use crate::domain::ids::{SiteId, StudyId};
use crate::error::{ApiError, FieldError};

/// Quantiles of the completion time are searched up to this many weeks (10 years).
pub const HORIZON_WEEKS: f64 = 520.0;
/// The bisection of a completion quantile stops at this width (weeks).
const QUANTILE_TOLERANCE_WEEKS: f64 = 1e-6;
/// The fitted shape alpha is searched in [1e-3, 1000]; a maximum at the upper bound means
/// the sites show no overdispersion (a common rate), and the answer says `capped`.
const ALPHA_MIN: f64 = 1e-3;
pub const ALPHA_MAX: f64 = 1000.0;
/// Relative tolerance of the search on alpha (on ln alpha, the same to first order).
const ALPHA_TOLERANCE: f64 = 1e-7;
/// Grid points on ln alpha before the golden-section refinement: the profile likelihood
/// is flat near its top and not guaranteed unimodal, so a bracket is found first.
const ALPHA_GRID: usize = 80;
/// The fit needs this many sites with a week of exposure, and this many enrolled.
pub const FIT_MIN_SITES: usize = 3;
pub const FIT_MIN_ENROLLED: i64 = 5;
/// The planning prior's shape.
pub const PLANNING_PRIOR_ALPHA: f64 = 2.0;
/// The quantiles answered.
pub const QUANTILES: [f64; 3] = [0.1, 0.5, 0.9];

/// The Monday on or before `day`: t0, where counts stop and horizons start.
pub fn clock(day: NaiveDate) -> NaiveDate {
    let back = u64::from(day.weekday().num_days_from_monday());
    day.checked_sub_days(Days::new(back)).unwrap_or(day)
}

/// `(later - earlier)` in weeks (days / 7, fractional).
pub fn weeks_between(earlier: NaiveDate, later: NaiveDate) -> f64 {
    (later - earlier).num_days() as f64 / 7.0
}

fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

// ---------------------------------------------------------------------------------------
// The future: a sum of gamma-mixed Poisson processes, moment-matched to a negative binomial.

/// One site's future: posterior Gamma(shape, rate), enrolling from `delay` weeks after t0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SiteFuture {
    pub shape: f64,
    pub rate: f64,
    pub delay: f64,
}

/// The future enrollment of a study's sites, N(x) for x weeks after t0.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FutureModel {
    pub sites: Vec<SiteFuture>,
}

impl FutureModel {
    /// Mean m and the gamma part v of the variance of N(x):
    /// `m = sum a e / b`, `v = sum a e^2 / b^2`, `e = max(0, x - d)`. Var N(x) = m + v.
    pub fn moments(&self, x: f64) -> (f64, f64) {
        self.sites.iter().fold((0.0, 0.0), |(m, v), site| {
            let e = (x - site.delay).max(0.0);
            let mean = site.shape * e / site.rate;
            (m + mean, v + mean * e / site.rate)
        })
    }

    /// P(N(x) >= n) under the moment-matched negative binomial (r = m^2/v,
    /// p = m/(m+v)): `I_{v/(m+v)}(n, r)`.
    pub fn prob_at_least(&self, x: f64, n: i64) -> f64 {
        if n <= 0 {
            return 1.0;
        }
        let (m, v) = self.moments(x);
        nb_tail(m, v, n)
    }

    /// The q-quantile of the completion time: the smallest x in [0, 520] with
    /// `P(N(x) >= remaining) >= q`, by bisection to 1e-6 weeks. `None` beyond the horizon.
    pub fn completion_quantile(&self, remaining: i64, q: f64) -> Option<f64> {
        if self.prob_at_least(HORIZON_WEEKS, remaining) < q {
            return None;
        }
        let (mut low, mut high) = (0.0, HORIZON_WEEKS);
        if self.prob_at_least(low, remaining) >= q {
            return Some(low);
        }
        while high - low > QUANTILE_TOLERANCE_WEEKS {
            let mid = 0.5 * (low + high);
            if self.prob_at_least(mid, remaining) >= q {
                high = mid;
            } else {
                low = mid;
            }
        }
        Some(high)
    }

    /// The q-quantile of N(x): the smallest n with `P(N(x) <= n) >= q`.
    pub fn count_quantile(&self, x: f64, q: f64) -> i64 {
        let (m, v) = self.moments(x);
        let cdf = |n: i64| 1.0 - nb_tail(m, v, n + 1);
        if cdf(0) >= q {
            return 0;
        }
        // Bracket by doubling from a few standard deviations above the mean, then bisect.
        let mut high = (m + 4.0 * (m + v).sqrt()).ceil().max(1.0) as i64;
        while cdf(high) < q {
            if high > i64::MAX / 4 {
                return high;
            }
            high *= 2;
        }
        let mut low = 0;
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            if cdf(mid) >= q {
                high = mid;
            } else {
                low = mid;
            }
        }
        high
    }
}

/// P(N >= n) for the negative binomial with mean m and variance m + v (n >= 1). A model
/// with no mean enrolls no one; with no gamma variance (v = 0) it is the Poisson limit,
/// reached by a tiny v.
fn nb_tail(m: f64, v: f64, n: i64) -> f64 {
    if n <= 0 {
        return 1.0;
    }
    // `m <= 0` or NaN alike: nothing to enroll.
    if m.is_nan() || m <= 0.0 {
        return 0.0;
    }
    let v = v.max(m * 1e-12);
    let r = m * m / v;
    let x = v / (m + v);
    checked_beta_reg(n as f64, r, x).unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------
// Hyperparameters.

/// Where the gamma prior came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PriorSource {
    /// `prior_alpha` and `prior_beta` of the request.
    Given,
    /// The maximum-likelihood estimate from the sites' enrollment.
    Fitted,
    /// The likelihood is highest at alpha = 1000 (no overdispersion): alpha = 1000 and
    /// beta = alpha x total exposure / total enrolled.
    Capped,
    /// Too little data to fit: alpha = 2 around the rate the plan needs.
    PlanningPrior,
}

/// The gamma prior of the sites' weekly rates: shape `alpha`, rate `beta` (mean
/// alpha/beta participants per week).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct Hyperparameters {
    pub alpha: f64,
    pub beta: f64,
    pub source: PriorSource,
}

/// The log marginal likelihood of the sites' counts (negative binomial), up to terms
/// free of (alpha, beta): `sum lnG(a+k) - lnG(a) + a ln b - (a+k) ln(b+t)`.
fn log_likelihood(samples: &[(i64, f64)], alpha: f64, beta: f64) -> f64 {
    samples
        .iter()
        .map(|&(k, t)| {
            let k = k as f64;
            ln_gamma(alpha + k) - ln_gamma(alpha) + alpha * beta.ln()
                - (alpha + k) * (beta + t).ln()
        })
        .sum()
}

/// The beta that maximises the likelihood for a given alpha: the root of
/// `sum [a/b - (a+k)/(b+t)] = 0`, i.e. of `sum (a+k) b/(b+t) = n a`, whose left side
/// grows from 0 to `n a + sum k` with b, so the root is unique when `sum k > 0`.
/// Bisection on ln b.
fn profile_beta(samples: &[(i64, f64)], alpha: f64) -> f64 {
    let n = samples.len() as f64;
    let excess = |beta: f64| {
        samples
            .iter()
            .map(|&(k, t)| (alpha + k as f64) * beta / (beta + t))
            .sum::<f64>()
            - n * alpha
    };
    let (total_k, total_t) = totals(samples);
    // The moment estimate alpha t/k is within a few orders of magnitude of the root.
    let guess = (alpha * total_t / total_k.max(1.0)).max(1e-300);
    let (mut low, mut high) = (guess.ln() - 30.0, guess.ln() + 30.0);
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        if excess(mid.exp()) > 0.0 {
            high = mid;
        } else {
            low = mid;
        }
        if high - low < 1e-13 {
            break;
        }
    }
    (0.5 * (low + high)).exp()
}

fn totals(samples: &[(i64, f64)]) -> (f64, f64) {
    samples
        .iter()
        .fold((0.0, 0.0), |(k, t), &(ki, ti)| (k + ki as f64, t + ti))
}

/// The profile log likelihood at ln alpha.
fn profile(samples: &[(i64, f64)], ln_alpha: f64) -> f64 {
    let alpha = ln_alpha.exp();
    log_likelihood(samples, alpha, profile_beta(samples, alpha))
}

/// The maximum-likelihood (alpha, beta) from `(enrolled, exposure weeks)` of the sites
/// with at least a week of exposure, or `None` with fewer than 3 such sites or fewer than
/// 5 enrolled. beta is profiled out; ln alpha is searched on [ln 1e-3, ln 1000]: a grid
/// finds the bracket of the best point, golden-section search narrows it to a relative
/// 1e-7.
pub fn fit(samples: &[(i64, f64)]) -> Option<Hyperparameters> {
    let (total_k, total_t) = totals(samples);
    if samples.len() < FIT_MIN_SITES || total_k < FIT_MIN_ENROLLED as f64 || total_t <= 0.0 {
        return None;
    }
    let (lo, hi) = (ALPHA_MIN.ln(), ALPHA_MAX.ln());
    let step = (hi - lo) / (ALPHA_GRID - 1) as f64;
    let grid: Vec<(f64, f64)> = (0..ALPHA_GRID)
        .map(|i| {
            let at = lo + step * i as f64;
            (at, profile(samples, at))
        })
        .collect();
    let best = grid
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.1.total_cmp(&b.1.1))
        .map_or(0, |(i, _)| i);
    let (mut a, mut b) = (
        lo + step * best.saturating_sub(1) as f64,
        (lo + step * (best + 1) as f64).min(hi),
    );
    let golden = (5f64.sqrt() - 1.0) / 2.0;
    let mut c = b - golden * (b - a);
    let mut d = a + golden * (b - a);
    let (mut fc, mut fd) = (profile(samples, c), profile(samples, d));
    while b - a > ALPHA_TOLERANCE {
        if fc >= fd {
            b = d;
            d = c;
            fd = fc;
            c = b - golden * (b - a);
            fc = profile(samples, c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + golden * (b - a);
            fd = profile(samples, d);
        }
    }
    let ln_alpha = 0.5 * (a + b);
    // At the upper bound within the search's tolerance: no overdispersion to estimate.
    if ln_alpha >= hi - 10.0 * ALPHA_TOLERANCE {
        return Some(Hyperparameters {
            alpha: ALPHA_MAX,
            beta: ALPHA_MAX * total_t / total_k,
            source: PriorSource::Capped,
        });
    }
    let alpha = ln_alpha.exp();
    Some(Hyperparameters {
        alpha,
        beta: profile_beta(samples, alpha),
        source: PriorSource::Fitted,
    })
}

/// The planning prior: mean rate `mu0 = target / (sites not closed x planned weeks)` with
/// alpha = 2 and beta = alpha / mu0. A 422 names each missing piece.
pub fn planning_prior(
    target: i32,
    sites_not_closed: usize,
    planned_start: Option<NaiveDate>,
    planned_end: Option<NaiveDate>,
) -> Result<Hyperparameters, ApiError> {
    let why = "too few sites with enrollment to fit the rates (3 sites with a week of \
               exposure and 5 enrolled), so the planning prior needs it; or pass prior_alpha \
               and prior_beta";
    let mut missing = Vec::new();
    if target <= 0 {
        missing.push(FieldError::new(
            "target_enrollment",
            "range",
            format!("must be more than 0: {why}"),
        ));
    }
    if sites_not_closed == 0 {
        missing.push(FieldError::new(
            "sites",
            "required",
            format!("no site that is not closed: {why}"),
        ));
    }
    if planned_start.is_none() {
        missing.push(FieldError::new(
            "planned_start_date",
            "required",
            format!("missing: {why}"),
        ));
    }
    if planned_end.is_none() {
        missing.push(FieldError::new(
            "planned_end_date",
            "required",
            format!("missing: {why}"),
        ));
    }
    let weeks = planned_start
        .zip(planned_end)
        .map(|(start, end)| weeks_between(start, end));
    if weeks.is_some_and(|w| w <= 0.0) {
        missing.push(FieldError::new(
            "planned_end_date",
            "order",
            format!("must be after planned_start_date: {why}"),
        ));
    }
    match weeks {
        Some(weeks) if missing.is_empty() => {
            let mu0 = f64::from(target) / (sites_not_closed as f64 * weeks);
            Ok(Hyperparameters {
                alpha: PLANNING_PRIOR_ALPHA,
                beta: PLANNING_PRIOR_ALPHA / mu0,
                source: PriorSource::PlanningPrior,
            })
        }
        _ => Err(ApiError::Validation(missing)),
    }
}

// ---------------------------------------------------------------------------------------
// A study's forecast.

/// How a site takes part, by its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Participation {
    /// `activated`, `enrolling`.
    Active,
    /// `planned`, `selected`.
    NotYetActive,
    /// `closed_to_enrollment`, `closed`, `terminated`.
    Closed,
}

impl From<SiteStatus> for Participation {
    fn from(status: SiteStatus) -> Self {
        match status {
            SiteStatus::Activated | SiteStatus::Enrolling => Self::Active,
            SiteStatus::Planned | SiteStatus::Selected => Self::NotYetActive,
            SiteStatus::ClosedToEnrollment | SiteStatus::Closed | SiteStatus::Terminated => {
                Self::Closed
            }
        }
    }
}

/// A live site's data, its reports counted up to t0 (`week_start < t0`); `db::forecast`
/// reads it as it is. The signals read it too, counted up to their `as_of`.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct SiteData {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub site_id: SiteId,
    #[diesel(sql_type = Text)]
    pub site_number: String,
    #[diesel(sql_type = Text)]
    pub status: SiteStatus,
    #[diesel(sql_type = Nullable<Date>)]
    pub activated_on: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    pub planned_activation_on: Option<NaiveDate>,
    /// Sum of `enrolled` over the reports before t0.
    #[diesel(sql_type = BigInt)]
    pub enrolled: i64,
    /// `week_start` of the first and of the last report before t0.
    #[diesel(sql_type = Nullable<Date>)]
    pub first_week: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    pub last_week: Option<NaiveDate>,
}

/// The study's side of the forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyData {
    pub target: i32,
    pub planned_start: Option<NaiveDate>,
    pub planned_end: Option<NaiveDate>,
}

/// Why a site adds nothing to the forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExclusionReason {
    /// Active, with neither `activated_on` nor a report before t0.
    ActiveWithoutDateOrReports,
    /// Closed, without a report before t0.
    ClosedWithoutReports,
    /// Not yet active, without `planned_activation_on`.
    NoPlannedActivation,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ExcludedSite {
    pub site_id: SiteId,
    pub site_number: String,
    pub reason: ExclusionReason,
}

/// One site in the forecast.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SiteForecast {
    pub site_id: SiteId,
    pub site_number: String,
    pub status: SiteStatus,
    /// k: enrolled in the weeks before t0 (participants).
    pub enrolled: i64,
    /// t: weeks from activation (else the first report) to t0, or, for a closed site, to
    /// the end of its last reported week.
    pub exposure_weeks: f64,
    /// d: weeks from t0 until the site enrolls (0 when it already does); null for a closed
    /// site, which has no future.
    pub delay_weeks: Option<f64>,
    /// alpha + k (the prior's alpha for a site not yet active).
    pub posterior_shape: f64,
    /// beta + t (participants per week: the rate parameter).
    pub posterior_rate: f64,
    /// posterior_shape / posterior_rate: the expected weekly rate (participants/week).
    pub mean_weekly_rate: f64,
    /// Not yet active, and its `planned_activation_on` is before t0 (it is counted from
    /// t0 on).
    pub activation_overdue: bool,
}

/// The forecast's three quantiles.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, ToSchema)]
pub struct Quantiles<T> {
    pub p10: Option<T>,
    pub p50: Option<T>,
    pub p90: Option<T>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ForecastStatus {
    /// A forecast of the completion time.
    Forecast,
    /// The study's target is already enrolled.
    TargetReached,
    /// No site has a future (all closed or left out): the target is never reached.
    NoFutureEnrollment,
}

/// The answer of `GET /studies/{id}/enrollment-forecast`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EnrollmentForecast {
    pub study_id: StudyId,
    /// t0: the Monday on or before the `as_of` asked for (default today, UTC). Counts stop
    /// here and horizons start here.
    pub as_of: NaiveDate,
    pub status: ForecastStatus,
    /// The study's `target_enrollment` (not the buffered one).
    pub target: i32,
    /// Sum of k over the sites (participants).
    pub enrolled: i64,
    /// R = target - enrolled (may be 0 or negative once reached).
    pub remaining: i64,
    pub hyperparameters: Hyperparameters,
    /// Every site with a future or with exposure, by site number.
    pub sites: Vec<SiteForecast>,
    pub excluded_sites: Vec<ExcludedSite>,
    /// Quantiles of the completion time (weeks after t0, 5 places); null when not
    /// forecast or beyond 520 weeks.
    pub completion_weeks: Quantiles<f64>,
    /// t0 + ceil(7 x weeks) days.
    pub completion_date: Quantiles<NaiveDate>,
    /// Some quantile lies beyond 520 weeks (and is null).
    pub beyond_horizon: bool,
    pub planned_end_date: Option<NaiveDate>,
    /// P(target reached by the planned end) (6 places): 1 when reached, 0 with no future
    /// or a planned end before t0; null without a planned end.
    pub probability_by_planned_end: Option<f64>,
    /// enrolled + E N(planned end) (participants, 2 places); null without a planned end.
    pub expected_enrolled_by_planned_end: Option<f64>,
}

/// The forecast with its model, for callers that need more than the answer (the curve).
#[derive(Debug, Clone, PartialEq)]
pub struct Forecasted {
    pub answer: EnrollmentForecast,
    pub model: FutureModel,
    /// t0.
    pub t0: NaiveDate,
}

/// The sample of one site for the fit, its exposure, and its place in the forecast.
struct Placed {
    site: SiteData,
    exposure: f64,
    /// None: no future (closed). Some(delay, overdue).
    future: Option<(f64, bool)>,
}

fn place(site: SiteData, t0: NaiveDate) -> Result<Placed, ExcludedSite> {
    let excluded = |reason| ExcludedSite {
        site_id: site.site_id,
        site_number: site.site_number.clone(),
        reason,
    };
    let start = site.activated_on.or(site.first_week);
    match Participation::from(site.status) {
        Participation::Active => {
            let Some(start) = start else {
                return Err(excluded(ExclusionReason::ActiveWithoutDateOrReports));
            };
            let delay = site
                .activated_on
                .filter(|on| *on > t0)
                .map_or(0.0, |on| weeks_between(t0, on));
            Ok(Placed {
                exposure: weeks_between(start, t0).max(0.0),
                future: Some((delay, false)),
                site,
            })
        }
        Participation::Closed => {
            let (Some(start), Some(last)) = (start, site.last_week) else {
                return Err(excluded(ExclusionReason::ClosedWithoutReports));
            };
            let end = last.checked_add_days(Days::new(7)).unwrap_or(last);
            Ok(Placed {
                exposure: weeks_between(start, end).max(0.0),
                future: None,
                site,
            })
        }
        Participation::NotYetActive => {
            let Some(planned) = site.planned_activation_on else {
                return Err(excluded(ExclusionReason::NoPlannedActivation));
            };
            let overdue = planned < t0;
            Ok(Placed {
                exposure: 0.0,
                future: Some((weeks_between(t0, planned).max(0.0), overdue)),
                site,
            })
        }
    }
}

/// A study's forecast at `as_of` (t0 is its Monday). `prior` is the request's
/// (alpha, beta), checked by the caller to be both positive. 422 when the hyperparameters
/// cannot be had (see `planning_prior`).
pub fn forecast(
    study_id: StudyId,
    study: &StudyData,
    sites: Vec<SiteData>,
    as_of: NaiveDate,
    prior: Option<(f64, f64)>,
) -> Result<Forecasted, ApiError> {
    let t0 = clock(as_of);
    let mut placed = Vec::new();
    let mut excluded_sites = Vec::new();
    let sites_not_closed = sites
        .iter()
        .filter(|s| Participation::from(s.status) != Participation::Closed)
        .count();
    for site in sites {
        match place(site, t0) {
            Ok(p) => placed.push(p),
            Err(e) => excluded_sites.push(e),
        }
    }
    let hyper = match prior {
        Some((alpha, beta)) => Hyperparameters {
            alpha,
            beta,
            source: PriorSource::Given,
        },
        None => {
            let samples: Vec<(i64, f64)> = placed
                .iter()
                .filter(|p| p.exposure >= 1.0)
                .map(|p| (p.site.enrolled, p.exposure))
                .collect();
            match fit(&samples) {
                Some(fitted) => fitted,
                None => planning_prior(
                    study.target,
                    sites_not_closed,
                    study.planned_start,
                    study.planned_end,
                )?,
            }
        }
    };
    let mut model = FutureModel::default();
    let mut site_answers = Vec::new();
    let mut enrolled = 0i64;
    for p in placed {
        enrolled += p.site.enrolled;
        let (shape, rate) = (
            hyper.alpha + p.site.enrolled as f64,
            hyper.beta + p.exposure,
        );
        if let Some((delay, _)) = p.future {
            model.sites.push(SiteFuture { shape, rate, delay });
        }
        site_answers.push(SiteForecast {
            site_id: p.site.site_id,
            site_number: p.site.site_number,
            status: p.site.status,
            enrolled: p.site.enrolled,
            exposure_weeks: round(p.exposure, 6),
            delay_weeks: p.future.map(|(d, _)| round(d, 6)),
            posterior_shape: shape,
            posterior_rate: rate,
            mean_weekly_rate: round(shape / rate, 6),
            activation_overdue: p.future.is_some_and(|(_, overdue)| overdue),
        });
    }
    let remaining = i64::from(study.target) - enrolled;
    let status = if remaining <= 0 {
        ForecastStatus::TargetReached
    } else if model.sites.is_empty() {
        ForecastStatus::NoFutureEnrollment
    } else {
        ForecastStatus::Forecast
    };
    let mut completion_weeks = Quantiles::default();
    let mut completion_date = Quantiles::default();
    let mut beyond_horizon = false;
    if status == ForecastStatus::Forecast {
        let [p10, p50, p90] = QUANTILES.map(|q| model.completion_quantile(remaining, q));
        beyond_horizon = [p10, p50, p90].iter().any(Option::is_none);
        let date = |weeks: Option<f64>| {
            weeks.and_then(|w| t0.checked_add_days(Days::new((7.0 * w).ceil() as u64)))
        };
        completion_date = Quantiles {
            p10: date(p10),
            p50: date(p50),
            p90: date(p90),
        };
        let rounded = |w: Option<f64>| w.map(|w| round(w, 5));
        completion_weeks = Quantiles {
            p10: rounded(p10),
            p50: rounded(p50),
            p90: rounded(p90),
        };
    }
    let end_weeks = study.planned_end.map(|end| weeks_between(t0, end).max(0.0));
    let probability_by_planned_end = end_weeks.map(|x| match status {
        ForecastStatus::TargetReached => 1.0,
        ForecastStatus::NoFutureEnrollment => 0.0,
        ForecastStatus::Forecast => round(model.prob_at_least(x, remaining), 6),
    });
    let expected_enrolled_by_planned_end =
        end_weeks.map(|x| round(enrolled as f64 + model.moments(x).0, 2));
    site_answers.sort_by(|a, b| {
        (a.site_number.as_str(), a.site_id).cmp(&(b.site_number.as_str(), b.site_id))
    });
    excluded_sites.sort_by(|a, b| {
        (a.site_number.as_str(), a.site_id).cmp(&(b.site_number.as_str(), b.site_id))
    });
    Ok(Forecasted {
        answer: EnrollmentForecast {
            study_id,
            as_of: t0,
            status,
            target: study.target,
            enrolled,
            remaining,
            hyperparameters: hyper,
            sites: site_answers,
            excluded_sites,
            completion_weeks,
            completion_date,
            beyond_horizon,
            planned_end_date: study.planned_end,
            probability_by_planned_end,
            expected_enrolled_by_planned_end,
        },
        model,
        t0,
    })
}

#[cfg(test)]
mod tests;
