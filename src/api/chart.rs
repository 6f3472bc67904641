//! The enrollment curve as an SVG a dashboard embeds as it is (issue 11): cumulative
//! actual enrollment, the plan, the target, and from t0 on the forecast's median with its
//! P10-P90 band, on dated axes with a legend and a title.
//!
//! Written by hand rather than with a plotting crate: `plotters`' text needs system fonts
//! (its `ttf` feature) that a fresh server may lack, and the chart has five series and two
//! axes, a few hundred lines of SVG. The text is drawn by the viewer's own sans-serif font.
//! The output is a pure function of the data (fixed-precision numbers, no clock, no
//! randomness), so the same data gives the same bytes; a 3-year study is about 20 KB.

use std::fmt::Write;

use actix_web::http::header::{self, Accept, Header, Quality};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{Datelike, Days, Months, NaiveDate};

pub const SVG_CONTENT_TYPE: &str = "image/svg+xml";

/// Whether `Accept` prefers `image/svg+xml`: named with a quality above 0 and at least as
/// high as those of `application/json` and `text/csv`.
pub fn wants_svg(req: &HttpRequest) -> bool {
    let Ok(accept) = Accept::parse(req) else {
        return false;
    };
    // The essence (`type/subtype+suffix`, no parameters): `subtype()` drops the `+xml`.
    let quality = |essence: &str| {
        accept
            .iter()
            .filter(|i| i.item.essence_str().eq_ignore_ascii_case(essence))
            .map(|i| i.quality)
            .max()
    };
    let Some(svg) = quality(SVG_CONTENT_TYPE).filter(|q| *q > Quality::ZERO) else {
        return false;
    };
    [quality("application/json"), quality("text/csv")]
        .into_iter()
        .flatten()
        .all(|other| svg >= other)
}

/// One point in time of the chart: the end of a week.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub day: NaiveDate,
    pub actual: Option<f64>,
    pub planned: Option<f64>,
    /// (P10, P50, P90).
    pub forecast: Option<(f64, f64, f64)>,
}

/// What the chart shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub subtitle: String,
    pub target: Option<f64>,
    /// t0, where the forecast starts.
    pub t0: Option<NaiveDate>,
    pub points: Vec<Point>,
}

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 540.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 70.0;
const BOTTOM: f64 = 110.0;

const ACTUAL: &str = "#1f5fa8";
const PLANNED: &str = "#6b6b6b";
const TARGET: &str = "#b8432f";
const MEDIAN: &str = "#2b8a3e";
const BAND: &str = "#2b8a3e";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round step for about `ticks` ticks over `0..=max`.
fn nice_step(max: f64, ticks: f64) -> f64 {
    let raw = (max / ticks).max(1.0);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// The SVG document.
pub fn render(chart: &Chart) -> String {
    let mut svg = String::with_capacity(32 * 1024);
    let days: Vec<NaiveDate> = chart.points.iter().map(|p| p.day).collect();
    let (Some(first), Some(last)) = (days.iter().min().copied(), days.iter().max().copied()) else {
        return empty(chart);
    };
    let first = first.checked_sub_days(Days::new(7)).unwrap_or(first);
    let span = ((last - first).num_days().max(1)) as f64;
    let top_value = chart
        .points
        .iter()
        .flat_map(|p| [p.actual, p.planned, p.forecast.map(|f| f.2)])
        .flatten()
        .chain(chart.target)
        .fold(1.0f64, f64::max);
    let step = nice_step(top_value * 1.05, 6.0);
    let y_max = (top_value * 1.05 / step).ceil() * step;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |day: NaiveDate| LEFT + (day - first).num_days() as f64 / span * plot_w;
    let y = |value: f64| TOP + plot_h - value / y_max * plot_h;

    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12" role="img" aria-label="{title}">"##,
        title = escape(&chart.title)
    );
    let _ = write!(
        svg,
        r##"<title>{title}</title><rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>"##,
        title = escape(&chart.title)
    );
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="28" font-size="18" font-weight="bold" fill="#222">{}</text><text x="{LEFT}" y="50" fill="#555">{}</text>"##,
        escape(&chart.title),
        escape(&chart.subtitle)
    );

    // Horizontal grid and the participants axis.
    let mut value = 0.0;
    while value <= y_max + step / 2.0 {
        let at = y(value);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{at:.1}" x2="{:.1}" y2="{at:.1}" stroke="#e3e3e3"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#444">{value}</text>"##,
            WIDTH - RIGHT,
            LEFT - 8.0,
            at + 4.0
        );
        value += step;
    }
    let _ = write!(
        svg,
        r##"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle" fill="#444">Participants (cumulative)</text>"##,
        TOP + plot_h / 2.0
    );

    // Dated axis: month ticks, labelled every `every` months (at most ~12 labels).
    let months = (last.year() - first.year()) * 12 + last.month() as i32 - first.month() as i32 + 1;
    let every = [1, 2, 3, 6, 12, 24]
        .into_iter()
        .find(|m| months / m <= 12)
        .unwrap_or(24);
    let mut tick = first.with_day(1).unwrap_or(first);
    if tick < first {
        tick = tick.checked_add_months(Months::new(1)).unwrap_or(last);
    }
    while tick <= last {
        let month_index = tick.year() * 12 + tick.month0() as i32;
        if month_index % every == 0 {
            let at = x(tick);
            let _ = write!(
                svg,
                r##"<line x1="{at:.1}" y1="{TOP}" x2="{at:.1}" y2="{:.1}" stroke="#efefef"/><line x1="{at:.1}" y1="{:.1}" x2="{at:.1}" y2="{:.1}" stroke="#444"/><text x="{at:.1}" y="{:.1}" text-anchor="middle" fill="#444">{}</text>"##,
                TOP + plot_h,
                TOP + plot_h,
                TOP + plot_h + 5.0,
                TOP + plot_h + 20.0,
                tick.format("%Y-%m")
            );
        }
        let Some(next) = tick.checked_add_months(Months::new(1)) else {
            break;
        };
        tick = next;
    }
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#444"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="#444"/>"##,
        TOP + plot_h,
        WIDTH - RIGHT,
        TOP + plot_h,
        TOP + plot_h
    );

    // The forecast band (P10 up, P90 back), then the lines.
    let band: Vec<(NaiveDate, (f64, f64, f64))> = chart
        .points
        .iter()
        .filter_map(|p| p.forecast.map(|f| (p.day, f)))
        .collect();
    if !band.is_empty() {
        let mut path = String::new();
        for (i, (day, f)) in band.iter().enumerate() {
            let _ = write!(
                path,
                "{}{:.1},{:.1}",
                if i == 0 { "M" } else { " L" },
                x(*day),
                y(f.2)
            );
        }
        for (day, f) in band.iter().rev() {
            let _ = write!(path, " L{:.1},{:.1}", x(*day), y(f.0));
        }
        let _ = write!(
            svg,
            r##"<path d="{path} Z" fill="{BAND}" fill-opacity="0.18" stroke="none"/>"##
        );
    }
    if let Some(t0) = chart.t0.filter(|t0| *t0 >= first && *t0 <= last) {
        let at = x(t0);
        let _ = write!(
            svg,
            r##"<line x1="{at:.1}" y1="{TOP}" x2="{at:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="2 3"/><text x="{:.1}" y="{:.1}" fill="#666">as of {t0}</text>"##,
            TOP + plot_h,
            at + 4.0,
            TOP + 12.0
        );
    }
    if let Some(target) = chart.target {
        let at = y(target);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{at:.1}" x2="{:.1}" y2="{at:.1}" stroke="{TARGET}" stroke-width="1.5" stroke-dasharray="8 4"/>"##,
            WIDTH - RIGHT
        );
    }
    let line = |svg: &mut String,
                values: &[(NaiveDate, f64)],
                color: &str,
                dash: &str,
                width: f64| {
        if values.is_empty() {
            return;
        }
        let mut points = String::new();
        for (day, value) in values {
            let _ = write!(points, "{:.1},{:.1} ", x(*day), y(*value));
        }
        let _ = write!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="{color}" stroke-width="{width}"{dash}/>"##,
            points.trim_end()
        );
    };
    let series = |pick: &dyn Fn(&Point) -> Option<f64>| -> Vec<(NaiveDate, f64)> {
        chart
            .points
            .iter()
            .filter_map(|p| pick(p).map(|v| (p.day, v)))
            .collect()
    };
    line(
        &mut svg,
        &series(&|p| p.planned),
        PLANNED,
        r##" stroke-dasharray="6 4""##,
        1.5,
    );
    line(
        &mut svg,
        &series(&|p| p.forecast.map(|f| f.1)),
        MEDIAN,
        r##" stroke-dasharray="3 2""##,
        2.0,
    );
    line(&mut svg, &series(&|p| p.actual), ACTUAL, "", 2.5);

    // The legend, below the dated axis.
    let legend_y = HEIGHT - 30.0;
    let items: [(&str, String); 5] = [
        (
            "Actual (cumulative)",
            format!(
                r##"<line x1="0" y1="0" x2="24" y2="0" stroke="{ACTUAL}" stroke-width="2.5"/>"##
            ),
        ),
        (
            "Planned",
            format!(
                r##"<line x1="0" y1="0" x2="24" y2="0" stroke="{PLANNED}" stroke-width="1.5" stroke-dasharray="6 4"/>"##
            ),
        ),
        (
            "Target",
            format!(
                r##"<line x1="0" y1="0" x2="24" y2="0" stroke="{TARGET}" stroke-width="1.5" stroke-dasharray="8 4"/>"##
            ),
        ),
        (
            "Forecast median (P50)",
            format!(
                r##"<line x1="0" y1="0" x2="24" y2="0" stroke="{MEDIAN}" stroke-width="2" stroke-dasharray="3 2"/>"##
            ),
        ),
        (
            "Forecast P10-P90",
            format!(
                r##"<rect x="0" y="-6" width="24" height="12" fill="{BAND}" fill-opacity="0.18"/>"##
            ),
        ),
    ];
    let mut at = LEFT;
    for (label, swatch) in items {
        let _ = write!(
            svg,
            r##"<g transform="translate({at:.1} {legend_y:.1})">{swatch}<text x="30" y="4" fill="#333">{label}</text></g>"##
        );
        at += 40.0 + label.len() as f64 * 6.6;
    }
    svg.push_str("</svg>\n");
    svg
}

/// A chart with nothing to draw: the title and a line saying why.
fn empty(chart: &Chart) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="120" viewBox="0 0 {WIDTH} 120" font-family="sans-serif" font-size="12"><title>{t}</title><rect width="{WIDTH}" height="120" fill="#ffffff"/><text x="{LEFT}" y="28" font-size="18" font-weight="bold" fill="#222">{t}</text><text x="{LEFT}" y="60" fill="#555">No enrollment reported and no planned start date: nothing to draw yet.</text></svg>
"##,
        t = escape(&chart.title)
    )
}

/// 200 with the SVG.
pub fn respond(svg: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, SVG_CONTENT_TYPE))
        .insert_header((header::VARY, "Accept"))
        .body(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> bool {
        let req = actix_web::test::TestRequest::default()
            .insert_header((header::ACCEPT, value))
            .to_http_request();
        wants_svg(&req)
    }

    #[test]
    fn svg_when_asked_for_first() {
        assert!(accept("image/svg+xml"));
        assert!(accept(
            "image/avif,image/webp,image/svg+xml,image/*,*/*;q=0.8"
        ));
        assert!(!accept("application/json"));
        assert!(!accept("application/json, image/svg+xml;q=0.5"));
        assert!(!accept("image/svg+xml;q=0"));
        assert!(!accept("*/*"));
    }

    fn chart(weeks: u64) -> Chart {
        let start: NaiveDate = "2026-01-04".parse().unwrap();
        let points = (0..weeks)
            .map(|w| {
                let day = start + Days::new(7 * w);
                let past = w < weeks / 2;
                Point {
                    day,
                    actual: past.then_some(w as f64 * 1.5),
                    planned: Some(w as f64 * 2.0),
                    forecast: (!past).then_some((w as f64, w as f64 * 1.5, w as f64 * 2.2)),
                }
            })
            .collect();
        Chart {
            title: "P-1 <Asthma> & co".into(),
            subtitle: "Enrollment".into(),
            target: Some(300.0),
            t0: Some(start + Days::new(7 * (weeks / 2))),
            points,
        }
    }

    #[test]
    fn deterministic_escaped_and_small_for_three_years() {
        let three_years = chart(157);
        let svg = render(&three_years);
        assert_eq!(svg, render(&three_years));
        assert!(svg.len() < 200 * 1024, "{} bytes", svg.len());
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.contains("P-1 &lt;Asthma&gt; &amp; co"));
        for label in [
            "2026-01",
            "2027-01",
            "2028-07",
            "Forecast P10-P90",
            "Target",
        ] {
            assert!(svg.contains(label), "{label}");
        }
    }
}
