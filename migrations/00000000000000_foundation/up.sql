-- TrialOps foundation: API clients, signing keys, studies, sites, vendors (referenced by
-- sites) and the append-only audit trail.
--
-- Conventions every resource table follows:
--   * `id` is a UUIDv7 chosen by the service, so primary-key order is creation order and
--     keyset pagination walks rows in the order they were made;
--   * `version` starts at 1 and grows by one on every change (ETag / If-Match);
--   * `deleted_at` marks a soft delete; unique keys only hold among live rows, so a deleted
--     site's number can be used again while the deleted row stays for the audit trail;
--   * enum columns are text guarded by CHECK constraints, the values the API speaks;
--   * every table of study data carries `study_id` (the Citus distribution key later on).

CREATE TABLE api_clients (
    id          uuid PRIMARY KEY,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role        text        NOT NULL CHECK (role IN ('admin', 'sponsor', 'cro', 'site', 'vendor', 'auditor', 'analyst')),
    studies     uuid[]      NOT NULL DEFAULT '{}',
    sites       uuid[]      NOT NULL DEFAULT '{}',
    vendor_id   uuid,
    secret_hash text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    version     integer     NOT NULL DEFAULT 1
);

-- The token signing key pair. Created on first start (under an advisory lock, so two
-- instances starting together agree on one key) and shared by every node.
CREATE TABLE signing_keys (
    kid         text PRIMARY KEY,
    algorithm   text        NOT NULL CHECK (algorithm = 'EdDSA'),
    private_der bytea       NOT NULL,
    public_raw  bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);

CREATE TABLE vendors (
    id            uuid PRIMARY KEY,
    external_id   varchar(100),
    name          text        NOT NULL,
    kind          text        NOT NULL CHECK (kind IN ('cro', 'central_lab', 'imaging', 'irt', 'edc', 'ecoa',
                                                       'logistics', 'specialty_pharmacy', 'technology', 'consultant', 'other')),
    status        text        NOT NULL DEFAULT 'onboarding'
                              CHECK (status IN ('onboarding', 'qualified', 'active', 'on_hold', 'offboarded')),
    country       varchar(2),
    contact_email text,
    qualified_on  date,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz,
    version       integer     NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX vendors_external_id_key ON vendors (external_id) WHERE deleted_at IS NULL;

CREATE TABLE studies (
    id                        uuid PRIMARY KEY,
    external_id               varchar(100),
    protocol_number           varchar(100) NOT NULL,
    title                     text         NOT NULL,
    short_title               text,
    phase                     text         NOT NULL CHECK (phase IN ('early_phase1', 'phase1', 'phase1_phase2', 'phase2',
                                                                     'phase2_phase3', 'phase3', 'phase4', 'not_applicable')),
    status                    text         NOT NULL CHECK (status IN ('planning', 'not_yet_recruiting', 'recruiting',
                                                                      'enrolling_by_invitation', 'active_not_recruiting',
                                                                      'suspended', 'terminated', 'completed', 'withdrawn')),
    therapeutic_area          text,
    indication                text,
    sponsor_name              text,
    nct_id                    varchar(11)  CHECK (nct_id ~ '^NCT[0-9]{8}$'),
    euct_number               text,
    ind_number                text,
    currency                  varchar(3)   NOT NULL,
    target_enrollment         integer      NOT NULL CHECK (target_enrollment >= 0),
    enrollment_buffer_pct     integer      NOT NULL DEFAULT 0 CHECK (enrollment_buffer_pct BETWEEN 0 AND 100),
    planned_start_date        date,
    planned_end_date          date,
    actual_start_date         date,
    actual_end_date           date,
    risk_escalation_threshold integer      NOT NULL DEFAULT 45 CHECK (risk_escalation_threshold BETWEEN 1 AND 125),
    deviation_reporting_days  integer      NOT NULL DEFAULT 7 CHECK (deviation_reporting_days BETWEEN 1 AND 365),
    created_at                timestamptz  NOT NULL DEFAULT now(),
    updated_at                timestamptz  NOT NULL DEFAULT now(),
    deleted_at                timestamptz,
    version                   integer      NOT NULL DEFAULT 1,
    CHECK (planned_end_date IS NULL OR planned_start_date IS NULL OR planned_end_date >= planned_start_date),
    CHECK (actual_end_date IS NULL OR actual_start_date IS NULL OR actual_end_date >= actual_start_date)
);
CREATE UNIQUE INDEX studies_protocol_number_key ON studies (protocol_number) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX studies_external_id_key ON studies (external_id) WHERE deleted_at IS NULL;
CREATE INDEX studies_updated_at_idx ON studies (updated_at);

CREATE TABLE sites (
    id                     uuid PRIMARY KEY,
    external_id            varchar(100),
    study_id               uuid        NOT NULL REFERENCES studies (id),
    site_number            varchar(50) NOT NULL,
    name                   text        NOT NULL,
    institution            text,
    principal_investigator text,
    country                varchar(2)  NOT NULL,
    status                 text        NOT NULL CHECK (status IN ('planned', 'selected', 'activated', 'enrolling',
                                                                  'closed_to_enrollment', 'closed', 'terminated')),
    irb_approved_on        date,
    activated_on           date,
    target_enrollment      integer     CHECK (target_enrollment >= 0),
    cro_vendor_id          uuid        REFERENCES vendors (id),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    deleted_at             timestamptz,
    version                integer     NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX sites_study_id_site_number_key ON sites (study_id, site_number) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX sites_external_id_key ON sites (external_id) WHERE deleted_at IS NULL;
CREATE INDEX sites_study_id_idx ON sites (study_id, id);
CREATE INDEX sites_updated_at_idx ON sites (updated_at);

-- The audit trail (21 CFR 11.10(e)): one row per change, written in the same transaction
-- as the change. `entity_version` and `data` (the row after the change, NULL after a
-- delete) let the change feed and webhooks be served from this table later on.
CREATE TABLE audit_events (
    seq            bigserial PRIMARY KEY,
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    actor          text        NOT NULL,
    actor_name     text        NOT NULL,
    role           text        NOT NULL,
    action         text        NOT NULL,
    entity_type    text        NOT NULL,
    entity_id      uuid        NOT NULL,
    study_id       uuid,
    entity_version integer,
    changes        jsonb       NOT NULL,
    data           jsonb,
    reason         text,
    request_id     text
);
CREATE INDEX audit_events_entity_idx ON audit_events (entity_type, entity_id, seq);
CREATE INDEX audit_events_study_idx ON audit_events (study_id, seq);

-- Append-only, enforced by the database itself and not only by the service's code.
CREATE FUNCTION audit_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();
