//! Success answers with the headers the conventions call for.

use actix_web::HttpResponse;
use actix_web::http::header;
use serde::Serialize;

use crate::db::deviations::Deviation;
use crate::db::milestones::MilestoneView;
use crate::db::write::Record;
use crate::domain::versioning::etag;

/// 200 with the record and its `ETag`.
pub fn tagged<T: Serialize>(record: &T, version: i32) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ETAG, etag(version)))
        .json(record)
}

/// 201 with the record, its `ETag` and its `Location`.
pub fn created<T: Serialize>(location: String, record: &T, version: i32) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::ETAG, etag(version)))
        .insert_header((header::LOCATION, location))
        .json(record)
}

/// What a record answers as its `ETag`: its version.
pub trait Versioned {
    fn version(&self) -> i32;
}

impl<R: Record> Versioned for R {
    fn version(&self) -> i32 {
        Record::version(self)
    }
}

/// A milestone as answered: the row with its slippage of the day.
impl Versioned for MilestoneView {
    fn version(&self) -> i32 {
        self.milestone.version
    }
}

/// A deviation as answered: the row with whether its reporting is overdue.
impl Versioned for Deviation {
    fn version(&self) -> i32 {
        self.record.version
    }
}
