//! Success answers with the headers the conventions call for.

use actix_web::HttpResponse;
use actix_web::http::header;
use serde::Serialize;

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
