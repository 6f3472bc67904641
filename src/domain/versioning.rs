//! Optimistic concurrency: every row has a `version`, answered as `ETag: "<version>"`;
//! `If-Match` on PATCH and DELETE must name it.

/// A parsed `If-Match` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum IfMatch {
    /// No header: no condition.
    #[default]
    Absent,
    /// `*`: the record must exist, in any version.
    Any,
    /// The record's current version must be one of these.
    Versions(Vec<i32>),
}

impl IfMatch {
    /// No header.
    pub fn any() -> Self {
        Self::Absent
    }

    /// Parses `"3"`, `W/"3"`, `"3", "4"` or `*`. Entity tags this service never sends
    /// cannot match, so they are kept as "matches nothing" (412), not rejected as malformed.
    pub fn parse(header: &str) -> Self {
        if header.trim() == "*" {
            return Self::Any;
        }
        let versions = header
            .split(',')
            .filter_map(|tag| {
                let tag = tag.trim();
                let tag = tag.strip_prefix("W/").unwrap_or(tag);
                tag.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
            })
            .collect();
        Self::Versions(versions)
    }

    pub fn matches(&self, current_version: i32) -> bool {
        match self {
            Self::Absent | Self::Any => true,
            Self::Versions(versions) => versions.contains(&current_version),
        }
    }

    /// For a record that does not exist yet (an upsert's first write): only a request
    /// without `If-Match` passes; `*` or a version promise a record that is not there
    /// (RFC 9110 13.1.1).
    pub fn matches_absent(&self) -> bool {
        *self == Self::Absent
    }
}

/// The `ETag` value for a version.
pub fn etag(version: i32) -> String {
    format!("\"{version}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_clients_send() {
        assert!(IfMatch::parse("\"3\"").matches(3));
        assert!(!IfMatch::parse("\"3\"").matches(4));
        assert!(IfMatch::parse("W/\"3\"").matches(3));
        assert!(IfMatch::parse("\"2\", \"3\"").matches(3));
        assert!(IfMatch::parse("*").matches(17));
        assert!(IfMatch::any().matches(1));
    }

    #[test]
    fn foreign_tags_match_nothing() {
        for header in ["3", "\"abc\"", "", "\"\""] {
            assert!(!IfMatch::parse(header).matches(3), "{header}");
        }
    }

    #[test]
    fn only_no_header_matches_a_missing_record() {
        assert!(IfMatch::any().matches_absent());
        assert!(!IfMatch::parse("*").matches_absent());
        assert!(!IfMatch::parse("\"1\"").matches_absent());
    }

    #[test]
    fn etag_round_trips() {
        assert!(IfMatch::parse(&etag(12)).matches(12));
    }
}
