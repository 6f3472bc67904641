//! The exchange standards: a study as an HL7 FHIR R5 `Bundle`, its protocol deviations as
//! the CDISC SDTM DV domain (Dataset-JSON 1.1), and the import of a ClinicalTrials.gov
//! record. Between the HTTP edge and the database: the mappings read rows and domain
//! types, and the import writes through `db::write`. The mappings are documented as
//! tables in `docs/standards.md`.

pub mod countries;
pub mod ctgov;
pub mod fhir;
pub mod import;
pub mod sdtm;
