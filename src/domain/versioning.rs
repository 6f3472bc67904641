//! Optimistic concurrency: every row has a `version`, answered as `ETag: "<version>"`;
//! `If-Match` on PATCH and DELETE must name it.

/// A parsed `If-Match` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IfMatch(Option<Vec<i32>>);

impl IfMatch {
    /// No header, or `*`: any current version will do.
    pub fn any() -> Self {
        Self(None)
    }

    /// Parses `"3"`, `W/"3"`, `"3", "4"` or `*`. Entity tags this service never sends
    /// cannot match, so they are kept as "matches nothing" (412), not rejected as malformed.
    pub fn parse(header: &str) -> Self {
        if header.trim() == "*" {
            return Self(None);
        }
        let versions = header
            .split(',')
            .filter_map(|tag| {
                let tag = tag.trim();
                let tag = tag.strip_prefix("W/").unwrap_or(tag);
                tag.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
            })
            .collect();
        Self(Some(versions))
    }

    pub fn matches(&self, current_version: i32) -> bool {
        self.0
            .as_ref()
            .is_none_or(|versions| versions.contains(&current_version))
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
    fn etag_round_trips() {
        assert!(IfMatch::parse(&etag(12)).matches(12));
    }
}
