//! CSV for BI tools (contract section 7): content negotiation on `Accept`, and answers that
//! stream their rows instead of building the whole file in memory.
//!
//! Negotiation: CSV is answered when `Accept` names `text/csv` (parameters allowed) with a
//! quality above 0 that is higher than that of `application/json`, or, when
//! `application/json` is not named, at least as high as that of the wildcards that cover
//! it (`*/*`, `application/*`). Anything else, a missing or unparsable `Accept` included,
//! gets JSON as before. Errors are `application/problem+json` either way.
//!
//! A list asked for as CSV walks the same keyset pagination as a JSON client would (same
//! filters, same scope, from `cursor` if given) in pages of [`EXPORT_PAGE_ROWS`], and sends
//! each page as soon as it is read: memory holds one page, whatever the export's size.
//! Each page is read with a connection taken from the pool and given back before the page
//! is sent, so a slow reader holds no connection. The walk has the consistency of a JSON
//! walk, not of a snapshot: every row that matches throughout the export is sent exactly
//! once, in id order; a row changed meanwhile is sent as its page found it.

use actix_web::http::header::{self, Accept, Header, Quality};
use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, web::Bytes};
use futures_util::future::{Ready, ready};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Serialize;
use tracing::Instrument;
use utoipa::ToSchema;
use utoipa::openapi::schema::{ArrayItems, ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, OpenApi, RefOr, Schema};

use crate::db::{Conn, Pool};
use crate::domain::cursor::{Page, Resume};
use crate::domain::tabular::{CsvEncoder, schema_columns};
use crate::error::{ApiError, ApiResult};

/// The media type of every CSV answer.
pub const CSV_CONTENT_TYPE: &str = "text/csv; charset=utf-8";

/// Rows per internal page of a CSV export: the largest page a JSON client may ask for.
pub const EXPORT_PAGE_ROWS: i64 = crate::api::extract::MAX_LIMIT;

/// What the client asked for in `Accept`. Extracting it never fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    pub fn of(req: &HttpRequest) -> Self {
        match Accept::parse(req) {
            Ok(accept) if prefers_csv(&accept) => Self::Csv,
            _ => Self::Json,
        }
    }
}

impl FromRequest for Format {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::of(req)))
    }
}

/// The rule in the module comment.
fn prefers_csv(accept: &Accept) -> bool {
    let quality = |matches: &dyn Fn(&str, &str) -> bool| {
        accept
            .iter()
            .filter(|item| matches(item.item.type_().as_str(), item.item.subtype().as_str()))
            .map(|item| item.quality)
            .max()
    };
    let Some(csv) = quality(&|t, s| t == "text" && s == "csv").filter(|q| *q > Quality::ZERO)
    else {
        return false;
    };
    match quality(&|t, s| t == "application" && s == "json") {
        Some(json) => csv > json,
        None => quality(&|t, s| t == "*" || (t == "application" && s == "*"))
            .is_none_or(|wildcard| csv >= wildcard),
    }
}

/// A list answer: one JSON page (`{"data", "next_cursor"}`) as before, or, when `format`
/// is CSV, every row of the walk that starts at `request` streamed as CSV.
///
/// `asked_limit` is the `limit` the client sent: for CSV it caps the rows of the whole
/// export (absent: the whole filtered collection). `fetch` reads one page for a request;
/// it is called once for JSON and once per page for CSV, with a fresh pooled connection
/// each time. The first CSV page is read before answering, so an unreachable database is
/// still a 503 problem; a failure after that aborts the response (the chunked body never
/// ends), so a client cannot mistake a cut-off export for a complete one.
pub async fn list<R, T, F>(
    format: Format,
    pool: &Pool,
    asked_limit: Option<i64>,
    request: R,
    fetch: F,
) -> ApiResult<HttpResponse>
where
    R: Resume + 'static,
    T: Serialize + ToSchema + 'static,
    F: AsyncFn(&mut Conn, &R) -> Result<Page<T>, ApiError> + 'static,
{
    if format == Format::Json {
        let mut conn = pool.get().await?;
        let page = fetch(&mut conn, &request).await?;
        return Ok(HttpResponse::Ok()
            .insert_header((header::VARY, "Accept"))
            .json(page));
    }
    let mut walk = Walk {
        pool: pool.clone(),
        fetch,
        next: Some(request),
        remaining: asked_limit,
    };
    let first = walk.next_page().await?;
    let pages = stream::unfold(walk, |mut walk| async move {
        let page = walk.next_page().await.transpose()?;
        Some((page, walk))
    });
    csv_pages::<T>(stream::iter(first.map(Ok)).chain(pages))
}

/// CSV of rows already in hand (e.g. one row per study or per week): one call for an
/// endpoint whose JSON answer is `{"data": rows}`.
pub fn csv_rows<T: Serialize + ToSchema + 'static>(rows: Vec<T>) -> ApiResult<HttpResponse> {
    csv_pages::<T>(stream::once(ready(Ok(rows))))
}

/// 200 with a header row, then the CSV records of each page of `pages` as it arrives.
/// An error in the stream ends the response early (see [`list`]).
pub fn csv_pages<T: Serialize + ToSchema + 'static>(
    pages: impl Stream<Item = Result<Vec<T>, ApiError>> + 'static,
) -> ApiResult<HttpResponse> {
    let encoder = CsvEncoder::new::<T>()?;
    let span = tracing::Span::current();
    let chunks = stream::unfold(Some((encoder, Box::pin(pages), true)), move |state| {
        let span = span.clone();
        async move {
            let (mut encoder, mut pages, first) = state?;
            loop {
                let result = match pages.next().await {
                    // The header row goes out even when there are no rows.
                    None if first => Ok(encoder.take()),
                    None => return None,
                    Some(Ok(rows)) => encoder.write(&rows).map(|()| encoder.take()),
                    Some(Err(error)) => Err(anyhow::Error::from(error)),
                };
                match result {
                    // An empty chunk would end a chunked body early: skip it.
                    Ok(bytes) if bytes.is_empty() => continue,
                    Ok(bytes) => {
                        return Some((Ok(Bytes::from(bytes)), Some((encoder, pages, false))));
                    }
                    Err(error) => {
                        tracing::error!(error = format!("{error:#}"), "CSV export aborted");
                        return Some((Err(ApiError::Internal(error)), None));
                    }
                }
            }
        }
        .instrument(span)
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, CSV_CONTENT_TYPE))
        .insert_header((header::VARY, "Accept"))
        .streaming(chunks))
}

/// The state of a CSV walk: where the next page starts, and how many rows may still go.
struct Walk<R, F> {
    pool: Pool,
    fetch: F,
    /// `None` once the last page has been read.
    next: Option<R>,
    remaining: Option<i64>,
}

impl<R: Resume, F> Walk<R, F> {
    async fn next_page<T>(&mut self) -> Result<Option<Vec<T>>, ApiError>
    where
        F: AsyncFn(&mut Conn, &R) -> Result<Page<T>, ApiError>,
    {
        let size = self
            .remaining
            .map_or(EXPORT_PAGE_ROWS, |n| n.min(EXPORT_PAGE_ROWS));
        let Some(mut request) = self.next.take().filter(|_| size > 0) else {
            return Ok(None);
        };
        request.set_limit(size);
        let page = {
            let mut conn = self.pool.get().await?;
            (self.fetch)(&mut conn, &request).await?
        };
        if let Some(remaining) = &mut self.remaining {
            *remaining -= i64::try_from(page.data.len()).unwrap_or(i64::MAX);
        }
        if let Some(cursor) = &page.next_cursor {
            if !request.resume(cursor) {
                return Err(
                    anyhow::anyhow!("a page answered a cursor its walk cannot follow").into(),
                );
            }
            self.next = Some(request);
        }
        Ok(Some(page.data))
    }
}

/// Operations that answer CSV although their JSON is not a `Page` (they pass their rows
/// to [`csv_rows`] or [`csv_pages`]); list operations are found by their `Page_*` answer.
pub const CSV_OPERATIONS: &[&str] = &[
    "read_enrollment_curve",
    "read_enrollment_forecast",
    "read_portfolio",
    "read_study_metrics",
    "read_study_signals",
];

/// Pages that stay JSON: a webhook's deliveries are a debugging view whose rows nest their
/// attempts, read page by page by whoever runs the webhook, not a BI table.
pub const JSON_ONLY_OPERATIONS: &[&str] = &["list_webhook_deliveries"];

/// Documents the `text/csv` answer of every operation that has one, in one place: each
/// `GET` under `/api/v1` whose 200 answer is a `Page_*`, and those in [`CSV_OPERATIONS`].
/// The example is the real header row, computed from the row schema as the server does.
pub fn document_csv(openapi: &mut OpenApi) {
    let schemas = openapi
        .components
        .as_ref()
        .map(|components| components.schemas.clone())
        .unwrap_or_default();
    let lookup = |name: &str| schemas.get(name);
    for (path, item) in openapi.paths.paths.iter_mut() {
        let Some(operation) = item.get.as_mut().filter(|_| path.starts_with("/api/v1/")) else {
            continue;
        };
        let named = operation
            .operation_id
            .as_deref()
            .is_some_and(|id| CSV_OPERATIONS.contains(&id));
        let Some(RefOr::T(ok)) = operation.responses.responses.get_mut("200") else {
            continue;
        };
        let Some(RefOr::Ref(answer)) =
            ok.content
                .get("application/json")
                .and_then(|content| match content {
                    RefOr::T(content) => content.schema.clone(),
                    RefOr::Ref(_) => None,
                })
        else {
            continue;
        };
        let name = answer.ref_location.rsplit('/').next().unwrap_or_default();
        let paged = name.starts_with("Page_");
        let json_only = operation
            .operation_id
            .as_deref()
            .is_some_and(|id| JSON_ONLY_OPERATIONS.contains(&id));
        if (!paged && !named) || json_only {
            continue;
        }
        // The rows are the items of the answer's `data` array.
        let rows = match lookup(name) {
            Some(RefOr::T(Schema::Object(object))) => match object.properties.get("data") {
                Some(RefOr::T(Schema::Array(array))) => match &array.items {
                    ArrayItems::RefOrSchema(items) => Some(items.as_ref()),
                    ArrayItems::False => None,
                },
                _ => None,
            },
            _ => None,
        };
        let header = match rows {
            Some(rows) => schema_columns(rows, &lookup).join(","),
            // A nested answer without `data` (a study's metrics) is flattened to figures.
            None => crate::domain::tabular::columns::<crate::domain::tabular::Figure>().join(","),
        };
        let description = if rows.is_none() {
            "With `Accept: text/csv`: every figure of the answer as a row `figure,value` (RFC 4180, UTF-8, CRLF), sorted by path: `figure` is the JSON path (`enrollment.velocity_4w`, `risks.heat_map[2][3]`), `value` its value, `null` as an empty cell."
        } else if paged {
            "With `Accept: text/csv`: the rows as CSV (RFC 4180, UTF-8, CRLF), a header row \
first (also when there are no rows), one record per row in the JSON order of its fields; \
`null` is an empty cell, an object or array is compact JSON text. The same filters and \
scope as the JSON pages, starting after `cursor` if given. Without `limit`, the whole \
filtered collection; with `limit`, at most that many rows. Streamed page by page, with no \
`next_cursor`."
        } else {
            "With `Accept: text/csv`: the rows of `data` as CSV (RFC 4180, UTF-8, CRLF), a \
header row first, `null` as an empty cell, an object or array as compact JSON text."
        };
        // OpenAPI 3.1 media types carry no description: it goes on the schema.
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
            .build();
        let content = ContentBuilder::new()
            .schema(Some(schema))
            .example(Some(serde_json::Value::String(format!("{header}\r\n"))))
            .build();
        ok.content.insert("text/csv".to_string(), RefOr::T(content));
        ok.description
            .push_str("; with `Accept: text/csv`, the rows as CSV");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(accept: Option<&str>) -> Format {
        let mut req = actix_web::test::TestRequest::default();
        if let Some(accept) = accept {
            req = req.insert_header((header::ACCEPT, accept));
        }
        Format::of(&req.to_http_request())
    }

    #[test]
    fn csv_only_when_text_csv_is_preferred() {
        for csv in [
            "text/csv",
            "text/csv; charset=utf-8",
            "text/csv;header=present",
            "TEXT/CSV",
            "text/csv, */*",
            "text/csv, */*;q=0.1",
            "application/json;q=0.5, text/csv",
            "text/csv;q=0.4, application/*;q=0.3",
            "text/html, text/csv",
        ] {
            assert_eq!(format(Some(csv)), Format::Csv, "{csv}");
        }
        for json in [
            None,
            Some(""),
            Some("*/*"),
            Some("application/json"),
            Some("text/*"),
            Some("application/json, text/csv"),
            Some("text/csv, application/json"),
            Some("text/csv;q=0.5, application/json"),
            Some("text/csv;q=0.5, */*"),
            Some("text/csv;q=0"),
            Some("not a media type"),
        ] {
            assert_eq!(format(json), Format::Json, "{json:?}");
        }
    }
}
