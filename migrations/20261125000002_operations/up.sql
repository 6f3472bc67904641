-- The trial's operations: milestones, budget lines and expenses, risks, protocol
-- deviations and weekly enrollment. Same conventions as the foundation (UUIDv7 ids,
-- version, soft delete where deleting is allowed, unique keys among live rows, enum text
-- with CHECKs, study_id on every row of study data).

CREATE INDEX vendors_updated_at_idx ON vendors (updated_at);

CREATE TABLE milestones (
    id            uuid PRIMARY KEY,
    external_id   varchar(100),
    study_id      uuid        NOT NULL REFERENCES studies (id),
    site_id       uuid        REFERENCES sites (id),
    vendor_id     uuid        REFERENCES vendors (id),
    name          text        NOT NULL,
    kind          text        NOT NULL CHECK (kind IN ('protocol_final', 'regulatory_submission', 'regulatory_approval',
                                                     'irb_approval', 'site_activation', 'first_patient_in',
                                                     'last_patient_in', 'last_patient_out', 'database_lock',
                                                     'clinical_study_report', 'vendor_deliverable', 'other')),
    baseline_date date,
    forecast_date date,
    actual_date   date,
    status        text        NOT NULL CHECK (status IN ('planned', 'in_progress', 'at_risk', 'completed', 'missed', 'cancelled')),
    owner         text,
    notes         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz,
    version       integer     NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX milestones_external_id_key ON milestones (external_id) WHERE deleted_at IS NULL;
CREATE INDEX milestones_study_id_idx ON milestones (study_id, id);
CREATE INDEX milestones_vendor_id_idx ON milestones (vendor_id) WHERE vendor_id IS NOT NULL;
CREATE INDEX milestones_updated_at_idx ON milestones (updated_at);

CREATE TABLE budget_lines (
    id               uuid PRIMARY KEY,
    external_id      varchar(100),
    study_id         uuid          NOT NULL REFERENCES studies (id),
    vendor_id        uuid          REFERENCES vendors (id),
    category         text          NOT NULL CHECK (category IN ('site_payments', 'cro_services', 'vendor_services',
                                                                'pass_through', 'lab', 'drug_supply', 'regulatory',
                                                                'personnel', 'other')),
    description      text          NOT NULL,
    planned_amount   numeric(14,2) NOT NULL CHECK (planned_amount >= 0),
    committed_amount numeric(14,2) NOT NULL DEFAULT 0 CHECK (committed_amount >= 0),
    currency         varchar(3)    NOT NULL,
    created_at       timestamptz   NOT NULL DEFAULT now(),
    updated_at       timestamptz   NOT NULL DEFAULT now(),
    deleted_at       timestamptz,
    version          integer       NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX budget_lines_external_id_key ON budget_lines (external_id) WHERE deleted_at IS NULL;
CREATE INDEX budget_lines_study_id_idx ON budget_lines (study_id, id);
CREATE INDEX budget_lines_updated_at_idx ON budget_lines (updated_at);

CREATE TABLE expenses (
    id             uuid PRIMARY KEY,
    external_id    varchar(100),
    study_id       uuid          NOT NULL REFERENCES studies (id),
    budget_line_id uuid          NOT NULL REFERENCES budget_lines (id),
    amount         numeric(14,2) NOT NULL CHECK (amount > 0),
    currency       varchar(3)    NOT NULL,
    incurred_on    date          NOT NULL,
    invoice_number varchar(100),
    description    text,
    created_at     timestamptz   NOT NULL DEFAULT now(),
    updated_at     timestamptz   NOT NULL DEFAULT now(),
    deleted_at     timestamptz,
    version        integer       NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX expenses_external_id_key ON expenses (external_id) WHERE deleted_at IS NULL;
CREATE INDEX expenses_budget_line_id_idx ON expenses (budget_line_id) WHERE deleted_at IS NULL;
CREATE INDEX expenses_study_id_idx ON expenses (study_id, id);
CREATE INDEX expenses_updated_at_idx ON expenses (updated_at);

CREATE TABLE risks (
    id               uuid PRIMARY KEY,
    external_id      varchar(100),
    study_id         uuid        NOT NULL REFERENCES studies (id),
    site_id          uuid        REFERENCES sites (id),
    vendor_id        uuid        REFERENCES vendors (id),
    title            text        NOT NULL,
    description      text,
    category         text        NOT NULL CHECK (category IN ('patient_safety', 'data_integrity', 'recruitment', 'regulatory',
                                                              'vendor', 'budget', 'supply', 'operational', 'other')),
    likelihood       integer     NOT NULL CHECK (likelihood BETWEEN 1 AND 5),
    impact           integer     NOT NULL CHECK (impact BETWEEN 1 AND 5),
    detectability    integer     NOT NULL CHECK (detectability BETWEEN 1 AND 5),
    -- The one place the score is computed: nothing else can make it disagree.
    score            integer     NOT NULL GENERATED ALWAYS AS (likelihood * impact * detectability) STORED,
    status           text        NOT NULL CHECK (status IN ('open', 'mitigating', 'escalated', 'accepted', 'closed')),
    owner            text,
    mitigation_plan  text,
    contingency_plan text,
    review_due_on    date,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz,
    version          integer     NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX risks_external_id_key ON risks (external_id) WHERE deleted_at IS NULL;
CREATE INDEX risks_study_id_idx ON risks (study_id, id);
CREATE INDEX risks_vendor_id_idx ON risks (vendor_id) WHERE vendor_id IS NOT NULL;
CREATE INDEX risks_updated_at_idx ON risks (updated_at);

-- Regulated records: never deleted (no deleted_at), closed or invalidated instead.
CREATE TABLE deviations (
    id                uuid PRIMARY KEY,
    external_id       varchar(100),
    study_id          uuid        NOT NULL REFERENCES studies (id),
    site_id           uuid        NOT NULL REFERENCES sites (id),
    participant_ref   varchar(64),
    category          text        NOT NULL CHECK (category IN ('informed_consent', 'eligibility', 'study_procedure',
                                                               'investigational_product', 'safety_reporting', 'visit_schedule',
                                                               'data_management', 'privacy', 'other')),
    description       text        NOT NULL,
    importance        text        NOT NULL CHECK (importance IN ('important', 'not_important')),
    occurred_on       date        NOT NULL,
    detected_on       date        NOT NULL,
    reported_on       date,
    irb_reported_on   date,
    status            text        NOT NULL CHECK (status IN ('open', 'under_review', 'capa_in_progress', 'closed', 'invalidated')),
    root_cause        text,
    corrective_action text,
    preventive_action text,
    capa_due_on       date,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    version           integer     NOT NULL DEFAULT 1,
    CHECK (detected_on >= occurred_on),
    CHECK (reported_on IS NULL OR reported_on >= detected_on)
);
CREATE UNIQUE INDEX deviations_external_id_key ON deviations (external_id);
CREATE INDEX deviations_study_id_idx ON deviations (study_id, id);
CREATE INDEX deviations_site_id_idx ON deviations (site_id, id);
CREATE INDEX deviations_updated_at_idx ON deviations (updated_at);
CREATE RULE deviations_are_never_deleted AS ON DELETE TO deviations DO INSTEAD NOTHING;

CREATE TABLE enrollment_reports (
    id            uuid PRIMARY KEY,
    study_id      uuid        NOT NULL REFERENCES studies (id),
    site_id       uuid        NOT NULL REFERENCES sites (id),
    week_start    date        NOT NULL CHECK (extract(isodow FROM week_start) = 1),
    screened      integer     NOT NULL CHECK (screened >= 0),
    screen_failed integer     NOT NULL CHECK (screen_failed >= 0),
    enrolled      integer     NOT NULL CHECK (enrolled >= 0),
    discontinued  integer     NOT NULL CHECK (discontinued >= 0),
    completed     integer     NOT NULL CHECK (completed >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    version       integer     NOT NULL DEFAULT 1,
    CHECK (screen_failed <= screened),
    CONSTRAINT enrollment_reports_site_week_key UNIQUE (site_id, week_start)
);
CREATE INDEX enrollment_reports_study_idx ON enrollment_reports (study_id, week_start);
CREATE INDEX enrollment_reports_updated_at_idx ON enrollment_reports (updated_at);
