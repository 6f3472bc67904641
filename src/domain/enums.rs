//! The contract's enums. Each is stored as text (guarded by a CHECK constraint) and sent
//! as the same lower snake_case string.

/// Declares an enum that serialises as snake_case JSON, documents itself in OpenAPI and is
/// stored in a text column. serde names the JSON values and strum the database ones; the
/// tests below check that both agree for every variant.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema,
            strum::EnumString, strum::AsRefStr, strum::VariantArray,
            diesel::AsExpression, diesel::FromSqlRow,
        )]
        #[serde(rename_all = "snake_case")]
        #[strum(serialize_all = "snake_case")]
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                use std::io::Write;
                out.write_all(self.as_ref().as_bytes())?;
                Ok(diesel::serialize::IsNull::No)
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn from_sql(bytes: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<
                    diesel::sql_types::Text,
                    diesel::pg::Pg,
                >>::from_sql(bytes)?;
                text.parse()
                    .map_err(|_| format!("unexpected {} value {text:?}", stringify!($name)).into())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_ref())
            }
        }
    };
}

text_enum! {
    /// What an API client may do (contract section 4).
    Role { Admin, Sponsor, Cro, Site, Vendor, Auditor, Analyst }
}

text_enum! {
    /// Study phase (ClinicalTrials.gov / FHIR).
    StudyPhase {
        EarlyPhase1, Phase1, Phase1Phase2, Phase2, Phase2Phase3, Phase3, Phase4, NotApplicable
    }
}

// A status enum's `#[default]` is the status a new record starts in when the client sends
// none (`#[serde(default)]` on the writable field).
text_enum! {
    /// Study status: ClinicalTrials.gov `overallStatus` values plus `planning`.
    #[derive(Default)]
    StudyStatus {
        #[default] Planning, NotYetRecruiting, Recruiting, EnrollingByInvitation, ActiveNotRecruiting,
        Suspended, Terminated, Completed, Withdrawn
    }
}

text_enum! {
    /// Site status, from selection to close-out.
    #[derive(Default)]
    SiteStatus { #[default] Planned, Selected, Activated, Enrolling, ClosedToEnrollment, Closed, Terminated }
}

// The kinds of record the service keeps, for two uses that differ by one kind: the audit
// trail, the change feed and webhooks name the kinds in `EntityType::FEED`; the access policy
// (`domain::policy::RULES`) has rules for every variant. (The `///` line below is the
// component's description in the committed OpenAPI document, hence this plain comment.)
text_enum! {
    /// Entity type names used in the audit trail, change feed and webhooks.
    EntityType {
        Study, Site, Vendor, Milestone, BudgetLine, Expense, Risk, Deviation, EnrollmentReport, Client,
        SigningKey,
        /// The audit trail's own events: read under the policy, but never a change the trail
        /// records, so not in `FEED`, and (by `serde(skip)`, which utoipa honours) neither
        /// accepted, sent nor in the OpenAPI document.
        #[serde(skip)]
        AuditEvent
    }
}

impl EntityType {
    /// The kinds the audit trail, the change feed and webhooks record, in the contract's
    /// order: every kind but `AuditEvent`.
    pub const FEED: [EntityType; 11] = [
        EntityType::Study,
        EntityType::Site,
        EntityType::Vendor,
        EntityType::Milestone,
        EntityType::BudgetLine,
        EntityType::Expense,
        EntityType::Risk,
        EntityType::Deviation,
        EntityType::EnrollmentReport,
        EntityType::Client,
        EntityType::SigningKey,
    ];

    /// The feed kind of this name (`risk`), if there is one.
    pub fn of_feed(name: &str) -> Option<EntityType> {
        EntityType::FEED
            .into_iter()
            .find(|kind| kind.as_ref() == name)
    }
}

text_enum! {
    /// What a vendor does for the trial.
    VendorKind {
        Cro, CentralLab, Imaging, Irt, Edc, Ecoa, Logistics, SpecialtyPharmacy, Technology, Consultant, Other
    }
}

text_enum! {
    /// Where a vendor stands with the sponsor.
    #[derive(Default)]
    VendorStatus { #[default] Onboarding, Qualified, Active, OnHold, Offboarded }
}

text_enum! {
    /// The standard milestones of a trial, plus vendor deliverables.
    MilestoneKind {
        ProtocolFinal, RegulatorySubmission, RegulatoryApproval, IrbApproval, SiteActivation,
        FirstPatientIn, LastPatientIn, LastPatientOut, DatabaseLock, ClinicalStudyReport,
        VendorDeliverable, Other
    }
}

text_enum! {
    #[derive(Default)]
    MilestoneStatus { #[default] Planned, InProgress, AtRisk, Completed, Missed, Cancelled }
}

text_enum! {
    /// What a budget line pays for.
    BudgetCategory {
        SitePayments, CroServices, VendorServices, PassThrough, Lab, DrugSupply, Regulatory, Personnel, Other
    }
}

text_enum! {
    /// RACT risk areas.
    RiskCategory {
        PatientSafety, DataIntegrity, Recruitment, Regulatory, Vendor, Budget, Supply, Operational, Other
    }
}

text_enum! {
    #[derive(Default)]
    RiskStatus { #[default] Open, Mitigating, Escalated, Accepted, Closed }
}

text_enum! {
    /// Protocol deviation categories.
    DeviationCategory {
        InformedConsent, Eligibility, StudyProcedure, InvestigationalProduct, SafetyReporting,
        VisitSchedule, DataManagement, Privacy, Other
    }
}

text_enum! {
    /// ICH E6(R3) importance of a protocol deviation.
    DeviationImportance { Important, NotImportant }
}

text_enum! {
    #[derive(Default)]
    DeviationStatus { #[default] Open, UnderReview, CapaInProgress, Closed, Invalidated }
}

text_enum! {
    /// What an audit event records: the three plain writes, or a named transition
    /// (`supersede` and `retire`: a signing key's rotation and retirement).
    AuditAction { Create, Update, Delete, Revoke, Escalate, Supersede, Retire }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantArray;

    fn serde_and_strum_agree<T>()
    where
        T: VariantArray + serde::Serialize + AsRef<str> + 'static,
    {
        names_agree(T::VARIANTS);
    }

    fn names_agree<T: serde::Serialize + AsRef<str>>(variants: &[T]) {
        for variant in variants {
            let json = serde_json::to_value(variant).unwrap();
            assert_eq!(json.as_str(), Some(variant.as_ref()));
        }
    }

    #[test]
    fn json_names_equal_database_names() {
        serde_and_strum_agree::<Role>();
        serde_and_strum_agree::<StudyPhase>();
        serde_and_strum_agree::<StudyStatus>();
        serde_and_strum_agree::<SiteStatus>();
        names_agree(&EntityType::FEED);
        serde_and_strum_agree::<AuditAction>();
        serde_and_strum_agree::<VendorKind>();
        serde_and_strum_agree::<VendorStatus>();
        serde_and_strum_agree::<MilestoneKind>();
        serde_and_strum_agree::<MilestoneStatus>();
        serde_and_strum_agree::<BudgetCategory>();
        serde_and_strum_agree::<RiskCategory>();
        serde_and_strum_agree::<RiskStatus>();
        serde_and_strum_agree::<DeviationCategory>();
        serde_and_strum_agree::<DeviationImportance>();
        serde_and_strum_agree::<DeviationStatus>();
    }

    #[test]
    fn the_feed_is_every_entity_type_but_audit_events() {
        let others: Vec<EntityType> = EntityType::VARIANTS
            .iter()
            .copied()
            .filter(|kind| *kind != EntityType::AuditEvent)
            .collect();
        assert_eq!(others, EntityType::FEED);
        assert!(serde_json::to_value(EntityType::AuditEvent).is_err());
        assert!(serde_json::from_value::<EntityType>(serde_json::json!("audit_event")).is_err());
        assert_eq!(EntityType::of_feed("audit_event"), None);
        assert_eq!(
            EntityType::of_feed("signing_key"),
            Some(EntityType::SigningKey)
        );
    }

    #[test]
    fn combined_phases_have_contract_names() {
        assert_eq!(StudyPhase::Phase1Phase2.as_ref(), "phase1_phase2");
        assert_eq!(StudyPhase::EarlyPhase1.as_ref(), "early_phase1");
        assert_eq!(
            "closed_to_enrollment".parse::<SiteStatus>().unwrap(),
            SiteStatus::ClosedToEnrollment
        );
    }
}
