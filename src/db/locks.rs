//! The locks a write takes, inside its transaction, on the rows it names: the study or
//! budget line a new row hangs off, the site or vendor it starts naming. The write path
//! (`db::write` and the `Record::check` of each resource) owns them; they read the schema
//! only, so every resource module can use them without importing another one.
//!
//! Each is `FOR KEY SHARE`, the weakest lock that conflicts with the `FOR UPDATE` every
//! update and delete takes first (`write::table_steps`): a delete waits for the write's
//! commit and then sees the new reference (409), or the write waits for the delete and then
//! finds the row gone (404 or 422). It is also the lock the foreign key takes anyway, so
//! concurrent writers naming one row share one lock instead of stacking a `FOR SHARE` on it
//! (each of which PostgreSQL records as a new multixact of every holder).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::Conn;
use crate::db::schema::{budget_lines, sites, studies, vendors};
use crate::domain::ids::{BudgetLineId, SiteId, StudyId, VendorId};
use crate::error::ApiError;

/// What a write under a study needs of it, read with its lock.
#[derive(Debug, Clone, PartialEq, Queryable)]
pub struct LockedStudy {
    /// A budget line is in its study's currency.
    pub currency: String,
    /// A risk whose score reaches it escalates.
    pub risk_escalation_threshold: i32,
}

/// Locks a live study against deletion while a row is written under it (404 if there is
/// no such live study).
pub async fn study_for_child(conn: &mut Conn, id: StudyId) -> Result<LockedStudy, ApiError> {
    studies::table
        .find(id)
        .filter(studies::deleted_at.is_null())
        .select((studies::currency, studies::risk_escalation_threshold))
        .for_key_share()
        .first(conn)
        .await
        .optional()?
        .ok_or(ApiError::NotFound)
}

/// `study_for_child` for many studies at once, in id order so that concurrent lockers agree
/// on it (a batch takes them before its first write; see `write::upsert_batch`). Studies
/// that are missing are skipped: the item naming one answers for it.
pub async fn studies_for_batch(conn: &mut Conn, ids: &[StudyId]) -> Result<(), ApiError> {
    studies::table
        .filter(studies::id.eq_any(ids))
        .filter(studies::deleted_at.is_null())
        .order(studies::id)
        .select(studies::id)
        .for_key_share()
        .load::<StudyId>(conn)
        .await?;
    Ok(())
}

/// Call inside the transaction of a write that starts naming `site_id` under `study_id`
/// (a milestone, say): 422 on `site_id` unless it is a live site of that study, and a lock
/// that keeps it so until the write commits (a site delete takes the row `FOR UPDATE`
/// before it counts what names the site).
///
/// The ids are typed, so a call with the two swapped does not compile:
///
/// ```compile_fail
/// # use trialops::db::{Conn, locks};
/// # use trialops::domain::ids::{SiteId, StudyId};
/// async fn swapped(conn: &mut Conn, site_id: SiteId, study_id: StudyId) {
///     let _ = locks::site_for_reference(conn, study_id, site_id).await;
/// }
/// ```
pub async fn site_for_reference(
    conn: &mut Conn,
    site_id: SiteId,
    study_id: StudyId,
) -> Result<(), ApiError> {
    let study_of_site: Option<StudyId> = sites::table
        .find(site_id)
        .filter(sites::deleted_at.is_null())
        .select(sites::study_id)
        .for_key_share()
        .first(conn)
        .await
        .optional()?;
    if study_of_site == Some(study_id) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "site_id",
            "reference",
            "names no site of this study",
        ))
    }
}

/// Call inside the transaction of a write that starts naming `vendor_id` (a new row, or a
/// changed reference): 422 on `field` unless the vendor is live, and a lock that holds it
/// so until the write commits.
///
/// A vendor delete takes the row `FOR UPDATE` before it counts what names the vendor, so
/// the two serialise: either the delete waits for this write and then counts it (409), or
/// this lock waits for the delete, re-reads the row, finds it deleted and refuses (422).
pub async fn vendor_for_reference(
    conn: &mut Conn,
    vendor_id: VendorId,
    field: &str,
) -> Result<(), ApiError> {
    let live: Option<VendorId> = vendors::table
        .find(vendor_id)
        .filter(vendors::deleted_at.is_null())
        .select(vendors::id)
        .for_key_share()
        .first(conn)
        .await
        .optional()?;
    match live {
        Some(_) => Ok(()),
        None => Err(ApiError::invalid(field, "reference", "names no vendor")),
    }
}

/// What an expense takes from its budget line, read with the line's lock.
#[derive(Debug, Clone, PartialEq, Queryable)]
pub struct LockedLine {
    pub study_id: StudyId,
    pub currency: String,
}

/// Locks a live line against deletion while an expense is written under it (404 if there
/// is no such live line).
pub async fn budget_line_for_child(
    conn: &mut Conn,
    id: BudgetLineId,
) -> Result<LockedLine, ApiError> {
    budget_lines::table
        .find(id)
        .filter(budget_lines::deleted_at.is_null())
        .select((budget_lines::study_id, budget_lines::currency))
        .for_key_share()
        .first(conn)
        .await
        .optional()?
        .ok_or(ApiError::NotFound)
}

/// The study check of a write of a row under a study: a new row locks its study
/// (`study_for_child`, 404 when it is not live), an existing one stays in it (422 on
/// `study_id`: "`row` cannot move to another study"). Answers what the lock read.
pub async fn in_study(
    conn: &mut Conn,
    before: Option<StudyId>,
    study_id: StudyId,
    row: &str,
) -> Result<Option<LockedStudy>, ApiError> {
    match before {
        None => Ok(Some(study_for_child(conn, study_id).await?)),
        Some(before) if before != study_id => Err(ApiError::invalid(
            "study_id",
            "immutable",
            format!("{row} cannot move to another study"),
        )),
        Some(_) => Ok(None),
    }
}

/// Whether a write starts naming `after` (a new row naming it, or an update changing it):
/// only then is the reference locked. `before` is the row's current value, `None` on
/// create.
fn newly_named<Id: Copy + PartialEq>(before: Option<Option<Id>>, after: Option<Id>) -> Option<Id> {
    after.filter(|_| before.is_none_or(|before| before != after))
}

/// `site_for_reference` for a site the write starts naming.
pub async fn named_site(
    conn: &mut Conn,
    before: Option<Option<SiteId>>,
    after: Option<SiteId>,
    study_id: StudyId,
) -> Result<(), ApiError> {
    match newly_named(before, after) {
        Some(site) => site_for_reference(conn, site, study_id).await,
        None => Ok(()),
    }
}

/// `vendor_for_reference` (422 on `field`) for a vendor the write starts naming.
pub async fn named_vendor(
    conn: &mut Conn,
    before: Option<Option<VendorId>>,
    after: Option<VendorId>,
    field: &str,
) -> Result<(), ApiError> {
    match newly_named(before, after) {
        Some(vendor) => vendor_for_reference(conn, vendor, field).await,
        None => Ok(()),
    }
}

/// The ids a row under a study may name besides it: a site of that study and a vendor (a
/// milestone's, a risk's).
pub type StudySiteVendor = (StudyId, Option<SiteId>, Option<VendorId>);

/// The reference checks of a write of a row that belongs to a study and may name a site of
/// it and a vendor: `in_study`, then a site it starts naming (`named_site`), then a vendor
/// (`named_vendor`, 422 on `vendor_id`), each locked so that it stays live until the write
/// commits. `before` is the row's current ids, `None` on create.
pub async fn study_site_vendor(
    conn: &mut Conn,
    before: Option<StudySiteVendor>,
    (study_id, site_id, vendor_id): StudySiteVendor,
    row: &str,
) -> Result<Option<LockedStudy>, ApiError> {
    let study = in_study(conn, before.map(|b| b.0), study_id, row).await?;
    named_site(conn, before.map(|b| b.1), site_id, study_id).await?;
    named_vendor(conn, before.map(|b| b.2), vendor_id, "vendor_id").await?;
    Ok(study)
}
