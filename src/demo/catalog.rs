//! The names the demo portfolio is made of: three studies, their sites and the vendors
//! they share. Only the shape of the portfolio lives here; `demo::plan` turns it into
//! records with dates relative to today.
//!
//! The first study is a real one: ClinicalTrials.gov record NCT06008288 (the fixture the
//! import tests use), with its protocol number, title, sponsor, target enrollment and 20
//! of its 31 real Chinese sites. Its operational data (enrollment, budget, risks,
//! deviations) is invented. The other two studies, their sites and every vendor are
//! fictional, in real cities and countries.

use crate::domain::enums::{StudyPhase, StudyStatus, VendorKind, VendorStatus};

/// The marker of the demo's studies (their `external_id`): how a second run knows the
/// portfolio is already there.
pub const MARKERS: [&str; 3] = ["trialops-demo-1", "trialops-demo-2", "trialops-demo-3"];

pub struct VendorSpec {
    pub name: &'static str,
    pub kind: VendorKind,
    pub status: VendorStatus,
    pub country: &'static str,
    pub contact_email: &'static str,
    /// Weeks before today it was qualified.
    pub qualified_weeks_ago: u32,
}

/// Vendor indexes into `VENDORS`, for the plans.
pub const MERIDIAN: usize = 0;
pub const HUAXIA: usize = 1;
pub const HELIX: usize = 2;
pub const CLEARVIEW: usize = 3;
pub const KESTREL: usize = 4;
pub const NORTHWIND: usize = 5;
pub const LUMEN: usize = 6;

pub const VENDORS: &[VendorSpec] = &[
    VendorSpec {
        name: "Meridian Clinical Research",
        kind: VendorKind::Cro,
        status: VendorStatus::Active,
        country: "US",
        contact_email: "studies@meridian-cr.example",
        qualified_weeks_ago: 140,
    },
    VendorSpec {
        name: "Huaxia Clinical Research",
        kind: VendorKind::Cro,
        status: VendorStatus::Active,
        country: "CN",
        contact_email: "pm@huaxia-cro.example",
        qualified_weeks_ago: 130,
    },
    VendorSpec {
        name: "Helix Central Laboratories",
        kind: VendorKind::CentralLab,
        status: VendorStatus::Active,
        country: "GB",
        contact_email: "kits@helix-labs.example",
        qualified_weeks_ago: 150,
    },
    VendorSpec {
        name: "ClearView Imaging Core",
        kind: VendorKind::Imaging,
        status: VendorStatus::Active,
        country: "NL",
        contact_email: "reads@clearview-imaging.example",
        qualified_weeks_ago: 120,
    },
    VendorSpec {
        name: "Kestrel IRT",
        kind: VendorKind::Irt,
        status: VendorStatus::Active,
        country: "US",
        contact_email: "support@kestrel-irt.example",
        qualified_weeks_ago: 125,
    },
    VendorSpec {
        name: "Northwind Clinical Logistics",
        kind: VendorKind::Logistics,
        status: VendorStatus::Qualified,
        country: "DE",
        contact_email: "depot@northwind-logistics.example",
        qualified_weeks_ago: 118,
    },
    VendorSpec {
        name: "Lumen eCOA",
        kind: VendorKind::Ecoa,
        status: VendorStatus::OnHold,
        country: "CA",
        contact_email: "help@lumen-ecoa.example",
        qualified_weeks_ago: 112,
    },
];

/// A site: country, city, name, principal investigator (none for the real sites: the
/// record names none).
pub struct SiteSpec {
    pub country: &'static str,
    pub city: &'static str,
    pub name: &'static str,
    pub investigator: Option<&'static str>,
}

const fn real(city: &'static str, name: &'static str) -> SiteSpec {
    SiteSpec {
        country: "CN",
        city,
        name,
        investigator: None,
    }
}

const fn site(
    country: &'static str,
    city: &'static str,
    name: &'static str,
    investigator: &'static str,
) -> SiteSpec {
    SiteSpec {
        country,
        city,
        name,
        investigator: Some(investigator),
    }
}

/// What makes one study's data differ from another's.
pub struct StudySpec {
    pub marker: &'static str,
    pub protocol_number: &'static str,
    pub title: &'static str,
    pub short_title: &'static str,
    pub phase: StudyPhase,
    pub status: StudyStatus,
    pub therapeutic_area: &'static str,
    pub indication: &'static str,
    pub sponsor_name: &'static str,
    pub nct_id: Option<&'static str>,
    pub currency: &'static str,
    pub target_enrollment: i32,
    pub enrollment_buffer_pct: i32,
    /// Planned start, weeks before this week's Monday.
    pub start_weeks_ago: i64,
    /// Planned end, weeks after this week's Monday.
    pub end_weeks_ahead: i64,
    /// Weekly enrollment rate of a site, drawn between these (participants per week).
    pub site_rate: (f64, f64),
    /// Screen failures per participant enrolled.
    pub screen_fail_ratio: f64,
    /// Weeks on treatment before a participant completes (none: treated until progression).
    pub treatment_weeks: Option<usize>,
    /// Enrollment stops (and the sites close to enrollment) once the target is reached.
    pub closes_at_target: bool,
    /// Spend per budget line as a percentage of the time-proportional plan (100 = on plan).
    pub burn_pct: &'static [i64],
    pub sites: &'static [SiteSpec],
}

pub const STUDIES: &[StudySpec] = &[
    StudySpec {
        marker: MARKERS[0],
        protocol_number: "JAB-21822-2001",
        title: "A Phase II Study Evaluating JAB-21822 Monotherapy in Adult Patients With Pancreatic Cancer and Other Solid Tumors Harboring the KRAS p.G12C Mutation.",
        short_title: "Glecirasib KRAS G12C PDAC",
        phase: StudyPhase::Phase2,
        status: StudyStatus::Recruiting,
        therapeutic_area: "Oncology",
        indication: "Locally advanced or metastatic pancreatic cancer and other solid tumours with KRAS p.G12C",
        sponsor_name: "Allist Pharmaceuticals, Inc.",
        nct_id: Some("NCT06008288"),
        currency: "CNY",
        target_enrollment: 88,
        enrollment_buffer_pct: 10,
        start_weeks_ago: 106,
        end_weeks_ahead: 30,
        site_rate: (0.02, 0.055),
        screen_fail_ratio: 2.2,
        treatment_weeks: None,
        closes_at_target: false,
        burn_pct: &[95, 90, 100, 85],
        sites: &[
            real("Hefei", "Anhui Provincial Cancer Hospital"),
            real("Beijing", "Beijing Cancer Hospital"),
            real("Beijing", "Peking Union Medical College Hospital"),
            real("Beijing", "Beijing Tsinghua Changgung Hospital"),
            real(
                "Beijing",
                "Cancer Hospital Chinese Academy of Medical Sciences",
            ),
            real("Fuzhou", "Fujian Cancer Hospital"),
            real(
                "Guangzhou",
                "Sun Yat-sen Memorial Hospital, Sun Yat-sen University",
            ),
            real("Guangzhou", "Sun Yat-Sen University Cancer Center"),
            real("Nanning", "Guangxi Medical University Cancer Hospital"),
            real("Harbin", "Harbin Medical University Cancer Hospital"),
            real("Zhengzhou", "Henan Cancer Hospital"),
            real("Wuhan", "Hubei Cancer Hospital"),
            real("Changsha", "Hunan Cancer Hospital"),
            real("Nanjing", "Jiangsu Cancer Hospital"),
            real("Shenyang", "The First Hospital of China Medical University"),
            real("Jinan", "Shandong Cancer Hospital"),
            real("Shanghai", "Huashan Hospital, Fudan University"),
            real("Chengdu", "West China Hospital of Sichuan University"),
            real("Hangzhou", "Zhejiang Cancer Hospital"),
            real(
                "Tianjin",
                "Tianjin Medical University Cancer Institute & Hospital",
            ),
        ],
    },
    StudySpec {
        marker: MARKERS[1],
        protocol_number: "EXA-AST-301",
        title: "A Phase 3, Randomised, Double-blind, Placebo-controlled Study of Examplumab in Adults with Moderate-to-Severe Asthma",
        short_title: "EXAMPLE-3",
        phase: StudyPhase::Phase3,
        status: StudyStatus::Recruiting,
        therapeutic_area: "Respiratory",
        indication: "Moderate-to-severe asthma",
        sponsor_name: "Example Pharma",
        nct_id: None,
        currency: "EUR",
        target_enrollment: 600,
        enrollment_buffer_pct: 10,
        start_weeks_ago: 108,
        end_weeks_ahead: 56,
        site_rate: (0.15, 0.4),
        screen_fail_ratio: 0.45,
        treatment_weeks: Some(52),
        closes_at_target: false,
        // Site payments and the CRO run well ahead of plan: the study's budget signal.
        burn_pct: &[138, 122, 100, 95, 160],
        sites: &[
            site(
                "DE",
                "Berlin",
                "Berlin Lung Research Centre",
                "Dr. K. Brandt",
            ),
            site("DE", "Munich", "Munich Airway Clinic", "Prof. S. Huber"),
            site(
                "DE",
                "Hamburg",
                "Hamburg Pneumology Trials Unit",
                "Dr. J. Petersen",
            ),
            site(
                "DE",
                "Frankfurt",
                "Frankfurt Allergy and Asthma Centre",
                "Dr. A. Wagner",
            ),
            site(
                "DE",
                "Leipzig",
                "Leipzig Respiratory Research",
                "Dr. M. Krause",
            ),
            site(
                "FR",
                "Paris",
                "Paris Respiratory Trials Centre",
                "Dr. C. Laurent",
            ),
            site("FR", "Lyon", "Lyon Asthma Research Unit", "Dr. P. Girard"),
            site(
                "FR",
                "Marseille",
                "Marseille Pneumology Research",
                "Dr. L. Fabre",
            ),
            site(
                "FR",
                "Lille",
                "Lille Airway Clinical Unit",
                "Dr. E. Lefebvre",
            ),
            site(
                "ES",
                "Madrid",
                "Madrid Respiratory Research Unit",
                "Dr. J. García",
            ),
            site(
                "ES",
                "Barcelona",
                "Barcelona Asthma Clinical Centre",
                "Dra. M. Puig",
            ),
            site(
                "ES",
                "Valencia",
                "Valencia Pneumology Trials",
                "Dr. R. Navarro",
            ),
            site(
                "IT",
                "Milan",
                "Milan Asthma and COPD Centre",
                "Dr. F. Colombo",
            ),
            site(
                "IT",
                "Rome",
                "Rome Respiratory Research Unit",
                "Dr. G. Ricci",
            ),
            site("IT", "Bologna", "Bologna Lung Trials Unit", "Dr. S. Galli"),
            site(
                "NL",
                "Amsterdam",
                "Amsterdam Airway Research",
                "Dr. H. de Vries",
            ),
            site(
                "NL",
                "Rotterdam",
                "Rotterdam Asthma Centre",
                "Dr. L. Bakker",
            ),
            site(
                "PL",
                "Warsaw",
                "Warsaw Respiratory Clinical Centre",
                "Dr. T. Nowak",
            ),
            site(
                "PL",
                "Kraków",
                "Kraków Pulmonology Research",
                "Dr. A. Wójcik",
            ),
            site(
                "PL",
                "Gdańsk",
                "Gdańsk Asthma Trials Unit",
                "Dr. M. Kowalczyk",
            ),
            site("GB", "London", "London Chest Research Unit", "Dr. R. Patel"),
            site(
                "GB",
                "Manchester",
                "Manchester Airways Trials",
                "Dr. S. Hughes",
            ),
            site(
                "GB",
                "Glasgow",
                "Glasgow Respiratory Research",
                "Dr. I. Campbell",
            ),
            site(
                "US",
                "Boston",
                "Boston Asthma Research Center",
                "Dr. E. Sullivan",
            ),
            site("US", "Chicago", "Chicago Pulmonary Trials", "Dr. D. Kim"),
            site(
                "US",
                "Houston",
                "Houston Allergy and Asthma Research",
                "Dr. M. Alvarez",
            ),
            site(
                "CA",
                "Toronto",
                "Toronto Respiratory Research Centre",
                "Dr. A. Singh",
            ),
            site(
                "CA",
                "Montréal",
                "Montréal Asthma Clinical Unit",
                "Dr. J. Tremblay",
            ),
        ],
    },
    StudySpec {
        marker: MARKERS[2],
        protocol_number: "EXA-T2D-401",
        title: "A Phase 4, Open-label Study of Glycaemic Durability with Examplutide Once Weekly in Adults with Type 2 Diabetes in Routine Care",
        short_title: "DURABLE-4",
        phase: StudyPhase::Phase4,
        status: StudyStatus::ActiveNotRecruiting,
        therapeutic_area: "Metabolism",
        indication: "Type 2 diabetes mellitus",
        sponsor_name: "Example Pharma",
        nct_id: None,
        currency: "USD",
        target_enrollment: 150,
        enrollment_buffer_pct: 0,
        start_weeks_ago: 110,
        end_weeks_ahead: 30,
        site_rate: (0.12, 0.3),
        screen_fail_ratio: 0.25,
        treatment_weeks: Some(26),
        closes_at_target: true,
        burn_pct: &[97, 92, 102, 90],
        sites: &[
            site(
                "US",
                "Seattle",
                "Seattle Diabetes Research Clinic",
                "Dr. L. Nguyen",
            ),
            site("US", "Denver", "Denver Metabolic Research", "Dr. K. Miller"),
            site(
                "US",
                "Atlanta",
                "Atlanta Endocrine Trials",
                "Dr. T. Johnson",
            ),
            site(
                "AU",
                "Sydney",
                "Sydney Diabetes Research Unit",
                "Dr. C. Walsh",
            ),
            site(
                "AU",
                "Melbourne",
                "Melbourne Metabolic Trials",
                "Dr. J. Thompson",
            ),
            site(
                "JP",
                "Tokyo",
                "Tokyo Diabetes Clinical Research Center",
                "Dr. H. Sato",
            ),
            site(
                "JP",
                "Osaka",
                "Osaka Metabolic Research Clinic",
                "Dr. Y. Tanaka",
            ),
            site(
                "KR",
                "Seoul",
                "Seoul Endocrinology Research Center",
                "Dr. J. Park",
            ),
            site("KR", "Busan", "Busan Diabetes Trials Unit", "Dr. S. Lee"),
            site(
                "BR",
                "São Paulo",
                "São Paulo Diabetes Research Center",
                "Dr. R. Souza",
            ),
            site(
                "BR",
                "Rio de Janeiro",
                "Rio Metabolic Research Unit",
                "Dra. A. Costa",
            ),
            site(
                "MX",
                "Mexico City",
                "Mexico City Endocrine Research",
                "Dr. L. Hernández",
            ),
        ],
    },
];
