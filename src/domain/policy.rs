//! Who may do what (contract section 4), written down once, as data.
//!
//! Reads are governed by reach: which rows of a resource a role can see at all (outside it:
//! 404, so existence does not leak). Writes are governed by role: a caller who can see a
//! row but whose role may not make this change gets a 403. The integration tests generate
//! their role x endpoint x scope matrix from `RULES`.

use crate::domain::enums::{EntityType, Role};
use crate::domain::ids::{SiteId, StudyId, VendorId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// Which rows of a resource a role reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Every row.
    All,
    /// Rows of the studies in the caller's `studies` claim (for studies: those studies).
    ClaimedStudies,
    /// Rows of the sites in the caller's `sites` claim (for studies: the studies of those
    /// sites; for sites: the sites themselves).
    OwnSites,
    /// Rows that name the caller's vendor (for vendors: its own record; for studies: the
    /// studies of milestones and risks naming it).
    OwnVendor,
    /// No row.
    Nothing,
}

/// One line of the rules: what `role` reads of `resource`, and which changes it may make
/// to the rows it reads.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub resource: EntityType,
    pub role: Role,
    pub reach: Reach,
    pub writes: &'static [Operation],
}

const CUD: &[Operation] = &[Operation::Create, Operation::Update, Operation::Delete];
/// Deviations are never deleted and enrollment weeks are upserted: create and update only.
const CU: &[Operation] = &[Operation::Create, Operation::Update];
const CD: &[Operation] = &[Operation::Create, Operation::Delete];
/// A key rotation creates the new signing key (and supersedes the old ones).
const C: &[Operation] = &[Operation::Create];
const U: &[Operation] = &[Operation::Update];
const NONE: &[Operation] = &[];

macro_rules! rules {
    ($($resource:ident: $($role:ident $reach:ident $writes:ident),+;)+) => {
        &[$($(Rule { resource: EntityType::$resource, role: Role::$role, reach: Reach::$reach, writes: $writes }),+),+]
    };
}

/// Contract section 4, resource by resource. Notes on the choices the contract leaves open:
/// creating and deleting a study is the sponsor's decision (a `cro` updates the studies it
/// runs); vendors are reference data that a `cro` reads but does not write; a `vendor`
/// updates only forecast and actual dates, status and notes of its milestones (the
/// milestone module enforces the fields); who rotated which signing key is read by those who
/// read the clients, and only an `admin` rotates; the audit trail is for the roles that
/// answer for the records.
#[rustfmt::skip]
pub const RULES: &[Rule] = rules! {
    Study:            Admin All CUD, Sponsor All CUD, Cro ClaimedStudies U,   Site OwnSites NONE, Vendor OwnVendor NONE, Auditor All NONE, Analyst All NONE;
    Site:             Admin All CUD, Sponsor All CUD, Cro ClaimedStudies CUD, Site OwnSites NONE, Vendor Nothing NONE,  Auditor All NONE, Analyst All NONE;
    Vendor:           Admin All CUD, Sponsor All CUD, Cro All NONE,           Site Nothing NONE,  Vendor OwnVendor NONE, Auditor All NONE, Analyst All NONE;
    Milestone:        Admin All CUD, Sponsor All CUD, Cro ClaimedStudies CUD, Site Nothing NONE,  Vendor OwnVendor U,    Auditor All NONE, Analyst All NONE;
    BudgetLine:       Admin All CUD, Sponsor All CUD, Cro ClaimedStudies CUD, Site Nothing NONE,  Vendor Nothing NONE,  Auditor All NONE, Analyst All NONE;
    Expense:          Admin All CUD, Sponsor All CUD, Cro ClaimedStudies CUD, Site Nothing NONE,  Vendor Nothing NONE,  Auditor All NONE, Analyst All NONE;
    Risk:             Admin All CUD, Sponsor All CUD, Cro ClaimedStudies CUD, Site Nothing NONE,  Vendor OwnVendor NONE, Auditor All NONE, Analyst All NONE;
    Deviation:        Admin All CU,  Sponsor All CU,  Cro ClaimedStudies CU,  Site OwnSites CU,   Vendor Nothing NONE,  Auditor All NONE, Analyst All NONE;
    EnrollmentReport: Admin All CU,  Sponsor All CU,  Cro ClaimedStudies CU,  Site OwnSites CU,   Vendor Nothing NONE,  Auditor All NONE, Analyst All NONE;
    Client:           Admin All CD,  Sponsor Nothing NONE, Cro Nothing NONE,  Site Nothing NONE,  Vendor Nothing NONE,  Auditor All NONE, Analyst Nothing NONE;
    SigningKey:       Admin All C,   Sponsor Nothing NONE, Cro Nothing NONE,  Site Nothing NONE,  Vendor Nothing NONE,  Auditor All NONE, Analyst Nothing NONE;
    AuditEvent:       Admin All NONE, Sponsor All NONE, Cro Nothing NONE, Site Nothing NONE, Vendor Nothing NONE, Auditor All NONE, Analyst Nothing NONE;
};

/// The study data that the dashboard figures (study metrics, enrollment curve, portfolio)
/// add up.
pub const METRIC_SOURCES: [EntityType; 7] = [
    EntityType::Site,
    EntityType::Milestone,
    EntityType::BudgetLine,
    EntityType::Expense,
    EntityType::Risk,
    EntityType::Deviation,
    EntityType::EnrollmentReport,
];

/// Whether `role` reads the dashboard figures of the studies it reads. Those figures sum
/// every kind of a study's data, so a role reads them only if it reads all of that data
/// for its studies (reach `All` or `ClaimedStudies` on each source). `site` and `vendor`
/// clients, which read a slice of a study, do not: a study total would show them other
/// sites' enrollment, the budget and the risk register.
pub fn reads_metrics(role: Role) -> bool {
    METRIC_SOURCES
        .iter()
        .all(|resource| matches!(reach(role, *resource), Reach::All | Reach::ClaimedStudies))
}

pub fn rule(role: Role, resource: EntityType) -> Option<&'static Rule> {
    RULES
        .iter()
        .find(|rule| rule.role == role && rule.resource == resource)
}

pub fn may_write(role: Role, resource: EntityType, operation: Operation) -> bool {
    rule(role, resource).is_some_and(|rule| rule.writes.contains(&operation))
}

pub fn reach(role: Role, resource: EntityType) -> Reach {
    rule(role, resource).map_or(Reach::Nothing, |rule| rule.reach)
}

/// A set of study ids a caller may see, or all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Only(Vec<StudyId>),
}

impl Scope {
    pub fn contains(&self, id: StudyId) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(ids) => ids.contains(&id),
        }
    }
}

/// The rows of one resource a caller may see, as the ids its rows are matched on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowScope {
    All,
    /// Rows whose `study_id` is one of these.
    Studies(Vec<StudyId>),
    /// Rows whose `site_id` (a site's own `id`) is one of these.
    Sites(Vec<SiteId>),
    /// Rows whose `vendor_id` (a vendor's own `id`) is this one.
    Vendor(VendorId),
    Nothing,
}

/// The ids of a row that scope rules look at.
#[derive(Debug, Clone, Copy, Default)]
pub struct RowKeys {
    pub study_id: Option<StudyId>,
    pub site_id: Option<SiteId>,
    pub vendor_id: Option<VendorId>,
}

impl RowScope {
    pub fn allows(&self, row: RowKeys) -> bool {
        fn among<I: PartialEq>(ids: &[I], id: Option<I>) -> bool {
            id.is_some_and(|id| ids.contains(&id))
        }
        match self {
            RowScope::All => true,
            RowScope::Studies(ids) => among(ids, row.study_id),
            RowScope::Sites(ids) => among(ids, row.site_id),
            RowScope::Vendor(vendor) => row.vendor_id == Some(*vendor),
            RowScope::Nothing => false,
        }
    }
}

/// Where a caller may create rows of one resource: in the studies it reads, and (for a
/// `site` client) at its own sites. The one check a `POST` and a batch item both take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateScope {
    pub studies: Scope,
    pub rows: RowScope,
}

impl CreateScope {
    /// The reference of a new row the caller may not write under, if any: `study_id` for a
    /// study it cannot see, `site_id` for a site outside a `site` client's claim. Outside
    /// its scope a study or site is as absent as one that does not exist.
    pub fn refused_reference(&self, keys: RowKeys) -> Option<&'static str> {
        if !keys
            .study_id
            .is_some_and(|study| self.studies.contains(study))
        {
            Some("study_id")
        } else if !self.rows.allows(keys) {
            Some(if matches!(self.rows, RowScope::Sites(_)) {
                "site_id"
            } else {
                "study_id"
            })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantArray;

    #[test]
    fn every_role_has_one_rule_per_resource() {
        for &resource in EntityType::VARIANTS {
            for role in Role::VARIANTS {
                let count = RULES
                    .iter()
                    .filter(|r| r.resource == resource && r.role == *role)
                    .count();
                assert_eq!(count, 1, "{role} {resource:?}");
            }
        }
    }

    #[test]
    fn read_only_roles_write_nothing() {
        for rule in RULES
            .iter()
            .filter(|r| matches!(r.role, Role::Auditor | Role::Analyst))
        {
            assert!(rule.writes.is_empty(), "{rule:?}");
        }
    }

    #[test]
    fn a_role_writes_only_what_it_reads() {
        for rule in RULES.iter().filter(|r| !r.writes.is_empty()) {
            assert_ne!(rule.reach, Reach::Nothing, "{rule:?}");
        }
    }

    #[test]
    fn only_admin_manages_clients_and_deviations_are_never_deleted() {
        assert!(may_write(
            Role::Admin,
            EntityType::Client,
            Operation::Create
        ));
        assert!(!may_write(
            Role::Sponsor,
            EntityType::Client,
            Operation::Create
        ));
        assert_eq!(reach(Role::Analyst, EntityType::Client), Reach::Nothing);
        assert!(
            RULES
                .iter()
                .all(|r| r.resource != EntityType::Deviation
                    || !r.writes.contains(&Operation::Delete))
        );
    }

    #[test]
    fn signing_keys_are_read_like_clients_and_rotated_by_admin_only() {
        for &role in Role::VARIANTS {
            assert_eq!(
                reach(role, EntityType::SigningKey),
                reach(role, EntityType::Client),
                "{role}"
            );
            assert_eq!(
                may_write(role, EntityType::SigningKey, Operation::Create),
                role == Role::Admin,
                "{role}"
            );
        }
    }

    #[test]
    fn create_scope_names_the_refused_reference() {
        let (study, other, site) = (StudyId::new_v7(), StudyId::new_v7(), SiteId::new_v7());
        let keys = |study_id, site_id| RowKeys {
            study_id: Some(study_id),
            site_id,
            vendor_id: None,
        };
        let cro = CreateScope {
            studies: Scope::Only(vec![study]),
            rows: RowScope::Studies(vec![study]),
        };
        assert_eq!(cro.refused_reference(keys(study, None)), None);
        assert_eq!(cro.refused_reference(keys(other, None)), Some("study_id"));
        let site_client = CreateScope {
            studies: Scope::Only(vec![study]),
            rows: RowScope::Sites(vec![site]),
        };
        assert_eq!(site_client.refused_reference(keys(study, Some(site))), None);
        assert_eq!(
            site_client.refused_reference(keys(study, Some(SiteId::new_v7()))),
            Some("site_id")
        );
        assert_eq!(
            site_client.refused_reference(keys(other, Some(site))),
            Some("study_id")
        );
    }

    #[test]
    fn metrics_are_for_the_roles_that_read_whole_studies() {
        for role in [
            Role::Admin,
            Role::Sponsor,
            Role::Cro,
            Role::Auditor,
            Role::Analyst,
        ] {
            assert!(reads_metrics(role), "{role}");
        }
        assert!(!reads_metrics(Role::Site));
        assert!(!reads_metrics(Role::Vendor));
    }

    #[test]
    fn row_scope_matches_on_its_key() {
        let (a, b) = (StudyId::new_v7(), SiteId::new_v7());
        let row = RowKeys {
            study_id: Some(a),
            site_id: Some(b),
            vendor_id: None,
        };
        assert!(RowScope::All.allows(row));
        assert!(RowScope::Studies(vec![a]).allows(row));
        assert!(!RowScope::Studies(vec![StudyId::new_v7()]).allows(row));
        assert!(RowScope::Sites(vec![b]).allows(row));
        assert!(!RowScope::Vendor(VendorId::new_v7()).allows(row));
        assert!(!RowScope::Nothing.allows(row));
    }
}
