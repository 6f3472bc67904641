//! Country names as ClinicalTrials.gov writes them -> ISO 3166-1 alpha-2 codes.
//!
//! The `celes` crate knows the ISO names and the common aliases ("Russia", "South Korea",
//! "Czech Republic"). ClinicalTrials.gov writes some countries the way older ISO lists
//! did ("Korea, Republic of") or with accents; those few are in [`MISSED`].

use celes::Country;

/// Names ClinicalTrials.gov uses that `celes` does not resolve, compared after
/// [`squash`]. Kept small: a unit test proves `celes` misses each of them.
const MISSED: &[(&str, &str)] = &[
    ("korea,republicof", "KR"),
    ("korea,democraticpeoplesrepublicof", "KP"),
    ("iran,islamicrepublicof", "IR"),
    ("moldova,republicof", "MD"),
    ("congo,thedemocraticrepublicofthe", "CD"),
    ("micronesia,federatedstatesof", "FM"),
    ("macedonia,theformeryugoslavrepublicof", "MK"),
    ("palestinianterritory,occupied", "PS"),
    ("palestine,stateof", "PS"),
    ("virginislands(u.s.)", "VI"),
    ("virginislands(british)", "VG"),
    ("holysee(vaticancitystate)", "VA"),
    ("libyanarabjamahiriya", "LY"),
    ("bolivia,plurinationalstateof", "BO"),
    ("venezuela,bolivarianrepublicof", "VE"),
    ("tanzania,unitedrepublicof", "TZ"),
];

/// Lower case, whitespace and apostrophes dropped, the Latin accents ClinicalTrials.gov
/// uses ("Côte D'Ivoire", "Réunion", "Curaçao", "Türkiye") folded to plain letters: the
/// key shape `celes` looks names up by.
fn squash(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '\'' | '’'))
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            other => other,
        })
        .collect()
}

/// The alpha-2 code of a country name, or `None` when neither `celes` nor the table
/// knows it.
pub fn alpha2(name: &str) -> Option<&'static str> {
    let key = squash(name);
    if key.is_empty() {
        return None;
    }
    if let Some((_, code)) = MISSED.iter().find(|(missed, _)| *missed == key) {
        return Some(code);
    }
    Country::from_name(&key)
        .or_else(|_| Country::from_alias(&key))
        .ok()
        .map(|country| country.alpha2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_names_resolve_through_celes() {
        for (name, code) in [
            ("China", "CN"),
            ("United States", "US"),
            ("Germany", "DE"),
            ("United Kingdom", "GB"),
            ("Russian Federation", "RU"),
            ("Czechia", "CZ"),
            ("Czech Republic", "CZ"),
            ("Netherlands", "NL"),
            ("South Korea", "KR"),
            ("Hong Kong", "HK"),
            ("Turkey", "TR"),
            ("Iran", "IR"),
            ("Bosnia and Herzegovina", "BA"),
            ("  france ", "FR"),
        ] {
            assert_eq!(alpha2(name), Some(code), "{name}");
        }
    }

    #[test]
    fn clinicaltrials_gov_spellings_resolve_through_the_table() {
        for (name, code) in [
            ("Korea, Republic of", "KR"),
            ("Korea, Democratic People's Republic of", "KP"),
            ("Iran, Islamic Republic of", "IR"),
            ("Moldova, Republic of", "MD"),
            ("Congo, The Democratic Republic of the", "CD"),
            ("Côte D'Ivoire", "CI"),
            ("Réunion", "RE"),
            ("Curaçao", "CW"),
            ("Türkiye", "TR"),
            ("Virgin Islands (U.S.)", "VI"),
            ("Lao People's Democratic Republic", "LA"),
            ("Vietnam", "VN"),
            ("Taiwan", "TW"),
        ] {
            assert_eq!(alpha2(name), Some(code), "{name}");
        }
    }

    #[test]
    fn the_table_holds_only_what_celes_misses_and_valid_codes() {
        let resolved: Vec<&str> = MISSED
            .iter()
            .filter(|(key, _)| {
                Country::from_name(key)
                    .or_else(|_| Country::from_alias(key))
                    .is_ok()
            })
            .map(|(key, _)| *key)
            .collect();
        assert!(resolved.is_empty(), "celes already resolves {resolved:?}");
        for (_, code) in MISSED {
            assert!(Country::from_alpha2(code).is_ok(), "{code}");
        }
    }

    #[test]
    fn unknown_names_are_none() {
        for name in ["", "  ", "Atlantis", "Former Serbia and Montenegro"] {
            assert_eq!(alpha2(name), None, "{name}");
        }
    }
}
