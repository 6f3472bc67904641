//! The reference the read benchmark measures TrialOps against: the bare stack beneath it.
//!
//! An actix-web server with a diesel-async + deadpool pool and one handler,
//! `GET /studies/{id}`, that reads the `studies` row by primary key and answers it as JSON.
//! No auth, no scope, no middleware, no logging: what the request path would cost if the
//! service added nothing. It reads the row into the service's own `Study` type, so both
//! answers serialise the same fields.
//!
//!     cargo run --release --example bench_reference -- <bind address> <database url>

use actix_web::{App, HttpResponse, HttpServer, web};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use trialops::db::schema::studies;
use trialops::db::studies::Study;
use uuid::Uuid;

type DbPool = Pool<diesel_async::AsyncPgConnection>;

async fn read_study(pool: web::Data<DbPool>, id: web::Path<Uuid>) -> HttpResponse {
    let Ok(mut conn) = pool.get().await else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    match studies::table
        .find(id.into_inner())
        .select(Study::as_select())
        .first::<Study>(&mut conn)
        .await
        .optional()
    {
        Ok(Some(study)) => HttpResponse::Ok().json(study),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(bind), Some(database_url)) = (args.next(), args.next()) else {
        eprintln!("usage: bench_reference <bind address> <database url>");
        std::process::exit(2);
    };
    let pool_size = std::env::var("TRIALOPS_DB_POOL_SIZE")
        .ok()
        .and_then(|size| size.parse().ok())
        .unwrap_or(16);
    // Fast recycling, as the service uses: no `SELECT 1` before each checkout.
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<diesel_async::AsyncPgConnection>::new_with_config(
        database_url,
        config,
    );
    let pool = Pool::builder(manager)
        .max_size(pool_size)
        .build()
        .map_err(std::io::Error::other)?;
    let pool = web::Data::new(pool);
    HttpServer::new(move || {
        App::new()
            .app_data(pool.clone())
            .route("/studies/{id}", web::get().to(read_study))
    })
    .bind(bind)?
    .run()
    .await
}
