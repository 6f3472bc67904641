//! Keyset pagination: a page of rows and the opaque cursor to the next one.
//!
//! Rows are ordered by their UUIDv7 id and a page asks for `id > last id seen`, never an
//! OFFSET: a walk sees every row that existed when it started exactly once, whatever is
//! inserted or deleted meanwhile, and a page costs the same at row 10 and row 10 million.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Version tag inside the cursor, so its format can change without breaking old cursors
/// silently.
const CURSOR_PREFIX: &str = "k1:";

pub fn encode_cursor(last_id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{last_id}"))
}

/// The id a cursor points after, or `None` if it is not a cursor this service made.
pub fn decode_cursor(cursor: &str) -> Option<Uuid> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix(CURSOR_PREFIX)?.parse().ok()
}

/// Prefix of cursors over sequence numbers (the audit trail), distinct from id cursors so
/// one can never be passed for the other.
const SEQ_CURSOR_PREFIX: &str = "s1:";

pub fn encode_seq_cursor(last_seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{SEQ_CURSOR_PREFIX}{last_seq}"))
}

pub fn decode_seq_cursor(cursor: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix(SEQ_CURSOR_PREFIX)?
        .parse()
        .ok()
        .filter(|seq: &i64| *seq >= 0)
}

/// What a list request asks for, common to every collection.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// Rows per page (1..=1000).
    pub limit: i64,
    /// Start after this id (decoded from the cursor).
    pub after: Option<Uuid>,
    /// Only rows changed at or after this time.
    pub updated_since: Option<DateTime<Utc>>,
    /// Include soft-deleted (or revoked) rows.
    pub include_deleted: bool,
}

/// A list request that a CSV export walks page by page: it sets the page size and moves
/// past the page just read using that page's `next_cursor`.
pub trait Resume {
    fn set_limit(&mut self, limit: i64);
    /// Moves after the page whose `next_cursor` this is; `false` if it is not a cursor of
    /// this kind.
    fn resume(&mut self, next_cursor: &str) -> bool;
}

impl Resume for PageRequest {
    fn set_limit(&mut self, limit: i64) {
        self.limit = limit;
    }

    fn resume(&mut self, next_cursor: &str) -> bool {
        self.after = decode_cursor(next_cursor);
        self.after.is_some()
    }
}

/// A page request over sequence numbers (the audit trail).
#[derive(Debug, Clone)]
pub struct SeqPageRequest {
    pub limit: i64,
    pub after: Option<i64>,
}

impl Resume for SeqPageRequest {
    fn set_limit(&mut self, limit: i64) {
        self.limit = limit;
    }

    fn resume(&mut self, next_cursor: &str) -> bool {
        self.after = decode_seq_cursor(next_cursor);
        self.after.is_some()
    }
}

/// One page of a list answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(example = "azE6MDE5M2YwZTQtN2IxYS03YzRlLTlhNTUtM2Y0ZDJiMWMwYTk5")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from a query that fetched `limit + 1` rows: the extra row, if there, only
    /// proves that another page exists. A cursor names a row of any kind: `id_of` answers
    /// its id, typed or bare.
    pub fn from_overfetch<I: Into<Uuid>>(
        rows: Vec<T>,
        limit: i64,
        id_of: impl Fn(&T) -> I,
    ) -> Self {
        Self::cut(rows, limit, |row| encode_cursor(id_of(row).into()))
    }

    /// [`Page::from_overfetch`] for rows ordered by a sequence number (`seq` cursors).
    pub fn from_seq_overfetch(rows: Vec<T>, limit: i64, seq_of: impl Fn(&T) -> i64) -> Self {
        Self::cut(rows, limit, |row| encode_seq_cursor(seq_of(row)))
    }

    fn cut(mut rows: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(cursor_of)
        } else {
            None
        };
        Self {
            data: rows,
            next_cursor,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            data: self.data.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(id)), Some(id));
    }

    #[test]
    fn seq_cursors_round_trip_and_never_pass_for_id_cursors() {
        assert_eq!(decode_seq_cursor(&encode_seq_cursor(42)), Some(42));
        assert_eq!(decode_seq_cursor(&encode_cursor(Uuid::now_v7())), None);
        assert_eq!(decode_cursor(&encode_seq_cursor(42)), None);
        assert_eq!(decode_seq_cursor(&URL_SAFE_NO_PAD.encode("s1:-1")), None);
    }

    #[test]
    fn page_requests_resume_after_their_own_cursors_only() {
        let id = Uuid::now_v7();
        let mut ids = PageRequest {
            limit: 50,
            after: None,
            updated_since: None,
            include_deleted: false,
        };
        assert!(ids.resume(&encode_cursor(id)));
        assert_eq!(ids.after, Some(id));
        assert!(!ids.resume(&encode_seq_cursor(3)));

        let mut seqs = SeqPageRequest {
            limit: 50,
            after: None,
        };
        assert!(seqs.resume(&encode_seq_cursor(3)));
        assert_eq!(seqs.after, Some(3));
        assert!(!seqs.resume(&encode_cursor(id)));
    }

    #[test]
    fn foreign_cursors_are_refused() {
        for bad in [
            "",
            "abc",
            "!!!",
            &URL_SAFE_NO_PAD.encode("k2:0193f0e4-7b1a-7c4e-9a55-3f4d2b1c0a99"),
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn overfetch_sets_the_cursor_only_when_more_rows_exist() {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let page = Page::from_overfetch(ids.clone(), 2, |id| *id);
        assert_eq!(page.data, ids[..2]);
        assert_eq!(
            page.next_cursor.as_deref().and_then(decode_cursor),
            Some(ids[1])
        );

        let last = Page::from_overfetch(ids[..2].to_vec(), 2, |id| *id);
        assert_eq!(last.next_cursor, None);
        let empty = Page::from_overfetch(Vec::<Uuid>::new(), 2, |id| *id);
        assert!(empty.data.is_empty() && empty.next_cursor.is_none());
    }
}
