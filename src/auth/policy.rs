//! Who may do what (contract section 4), written down once.
//!
//! Reads are governed by scope: which objects a caller can see at all (outside it: 404,
//! so existence does not leak). Writes are governed by role: a caller who can see an
//! object but whose role may not make this change gets a 403.

use uuid::Uuid;

use crate::domain::enums::Role;

/// The resources the write rules talk about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Study,
    Site,
    Client,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// The write table. A role missing from a row may not make that change at all; whether
/// the object is within the caller's scope is checked separately, on the object itself.
pub fn may_write(role: Role, resource: Resource, operation: Operation) -> bool {
    use Operation::{Create, Delete, Update};
    use Role::{Admin, Cro, Sponsor};
    match (resource, operation) {
        // A CRO runs studies it is contracted for; creating or deleting a study is the
        // sponsor's decision.
        (Resource::Study, Create | Delete) => matches!(role, Admin | Sponsor),
        (Resource::Study, Update) => matches!(role, Admin | Sponsor | Cro),
        (Resource::Site, _) => matches!(role, Admin | Sponsor | Cro),
        (Resource::Client, _) => role == Admin,
    }
}

/// Which roles may read API clients (never their secrets).
pub fn may_read_clients(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Auditor)
}

/// A set of ids a caller may see, or all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Only(Vec<Uuid>),
}

impl Scope {
    pub fn contains(&self, id: Uuid) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(ids) => ids.contains(&id),
        }
    }
}

/// Roles that read every study and everything under it.
pub fn reads_everything(role: Role) -> bool {
    matches!(
        role,
        Role::Admin | Role::Sponsor | Role::Auditor | Role::Analyst
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_roles_write_nothing() {
        for role in [Role::Auditor, Role::Analyst, Role::Site, Role::Vendor] {
            for resource in [Resource::Study, Resource::Site, Resource::Client] {
                for op in [Operation::Create, Operation::Update, Operation::Delete] {
                    assert!(!may_write(role, resource, op), "{role} {resource:?} {op:?}");
                }
            }
        }
    }

    #[test]
    fn only_admin_manages_clients() {
        assert!(may_write(Role::Admin, Resource::Client, Operation::Create));
        assert!(!may_write(
            Role::Sponsor,
            Resource::Client,
            Operation::Create
        ));
        assert!(may_read_clients(Role::Auditor) && !may_read_clients(Role::Analyst));
    }

    #[test]
    fn cro_updates_but_does_not_create_studies() {
        assert!(may_write(Role::Cro, Resource::Study, Operation::Update));
        assert!(!may_write(Role::Cro, Resource::Study, Operation::Create));
        assert!(may_write(Role::Cro, Resource::Site, Operation::Create));
    }
}
