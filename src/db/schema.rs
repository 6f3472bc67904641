// @generated shape: kept equal to `diesel print-schema` output for the migrations.

diesel::table! {
    api_clients (id) {
        id -> Uuid,
        name -> Text,
        role -> Text,
        studies -> Array<Uuid>,
        sites -> Array<Uuid>,
        vendor_id -> Nullable<Uuid>,
        secret_hash -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        version -> Int4,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        algorithm -> Text,
        private_der -> Nullable<Bytea>,
        public_raw -> Bytea,
        created_at -> Timestamptz,
        retired_at -> Nullable<Timestamptz>,
        private_enc -> Nullable<Bytea>,
        signing_from -> Nullable<Timestamptz>,
        tokens_until -> Nullable<Timestamptz>,
        signed_checkpoint -> Bool,
    }
}

diesel::table! {
    vendors (id) {
        id -> Uuid,
        external_id -> Nullable<Varchar>,
        name -> Text,
        kind -> Text,
        status -> Text,
        country -> Nullable<Varchar>,
        contact_email -> Nullable<Text>,
        qualified_on -> Nullable<Date>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        version -> Int4,
    }
}

diesel::table! {
    studies (id) {
        id -> Uuid,
        external_id -> Nullable<Varchar>,
        protocol_number -> Varchar,
        title -> Text,
        short_title -> Nullable<Text>,
        phase -> Text,
        status -> Text,
        therapeutic_area -> Nullable<Text>,
        indication -> Nullable<Text>,
        sponsor_name -> Nullable<Text>,
        nct_id -> Nullable<Varchar>,
        euct_number -> Nullable<Text>,
        ind_number -> Nullable<Text>,
        currency -> Varchar,
        target_enrollment -> Int4,
        enrollment_buffer_pct -> Int4,
        planned_start_date -> Nullable<Date>,
        planned_end_date -> Nullable<Date>,
        actual_start_date -> Nullable<Date>,
        actual_end_date -> Nullable<Date>,
        risk_escalation_threshold -> Int4,
        deviation_reporting_days -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        version -> Int4,
        forecast_confidence_threshold -> Float8,
    }
}

diesel::table! {
    sites (id) {
        id -> Uuid,
        external_id -> Nullable<Varchar>,
        study_id -> Uuid,
        site_number -> Varchar,
        name -> Text,
        institution -> Nullable<Text>,
        principal_investigator -> Nullable<Text>,
        country -> Varchar,
        status -> Text,
        irb_approved_on -> Nullable<Date>,
        activated_on -> Nullable<Date>,
        target_enrollment -> Nullable<Int4>,
        cro_vendor_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        version -> Int4,
        planned_activation_on -> Nullable<Date>,
        city -> Nullable<Text>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Int8,
        occurred_at -> Timestamptz,
        actor -> Text,
        actor_name -> Text,
        role -> Text,
        action -> Text,
        entity_type -> Text,
        entity_id -> Uuid,
        study_id -> Nullable<Uuid>,
        entity_version -> Nullable<Int4>,
        changes -> Jsonb,
        data -> Nullable<Jsonb>,
        reason -> Nullable<Text>,
        request_id -> Nullable<Text>,
        site_id -> Nullable<Uuid>,
        vendor_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    audit_chain (id) {
        id -> Bool,
        last_seq -> Int8,
        last_hash -> Text,
    }
}

diesel::table! {
    audit_seals (seq) {
        seq -> Int8,
        event_id -> Int8,
        prev_hash -> Text,
        hash -> Text,
        sealed_at -> Timestamptz,
        entity_type -> Text,
        entity_id -> Uuid,
        study_id -> Nullable<Uuid>,
        site_id -> Nullable<Uuid>,
        vendor_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    audit_unsealed (event_id) {
        event_id -> Int8,
    }
}

diesel::table! {
    rate_limit_windows (client_id, window_start) {
        client_id -> Uuid,
        window_start -> Timestamptz,
        leased -> Int4,
    }
}

diesel::table! {
    milestones (id) {
        id -> Uuid,
        external_id -> Nullable<Varchar>,
        study_id -> Uuid,
        site_id -> Nullable<Uuid>,
        vendor_id -> Nullable<Uuid>,
        name -> Text,
        kind -> Text,
        baseline_date -> Nullable<Date>,
        forecast_date -> Nullable<Date>,
        actual_date -> Nullable<Date>,
        status -> Text,
        owner -> Nullable<Text>,
        notes -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        version -> Int4,
    }
}

diesel::table! {
    budget_lines (id) {
        id -> Uuid,
        external_id -> Nullable<Varchar>,
        study_id -> Uuid,
        vendor_id -> Nullable<Uuid>,
        category -> Text,
        description -> Text,
        planned_amount -> Numeric,
        committed_amount -> Numeric,
        currency -> Varchar,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        version -> Int4,
    }
}

diesel::table! {
    expenses (id) {
        id -> Uuid,
        external_id -> Nullable<Varchar>,
        study_id -> Uuid,
        budget_line_id -> Uuid,
        amount -> Numeric,
        currency -> Varchar,
        incurred_on -> Date,
        invoice_number -> Nullable<Varchar>,
        description -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        version -> Int4,
    }
}

diesel::table! {
    risks (id) {
        id -> Uuid,
        external_id -> Nullable<Varchar>,
        study_id -> Uuid,
        site_id -> Nullable<Uuid>,
        vendor_id -> Nullable<Uuid>,
        title -> Text,
        description -> Nullable<Text>,
        category -> Text,
        likelihood -> Int4,
        impact -> Int4,
        detectability -> Int4,
        score -> Int4,
        status -> Text,
        owner -> Nullable<Text>,
        mitigation_plan -> Nullable<Text>,
        contingency_plan -> Nullable<Text>,
        review_due_on -> Nullable<Date>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        version -> Int4,
    }
}

diesel::table! {
    deviations (id) {
        id -> Uuid,
        external_id -> Nullable<Varchar>,
        study_id -> Uuid,
        site_id -> Uuid,
        participant_ref -> Nullable<Varchar>,
        category -> Text,
        description -> Text,
        importance -> Text,
        occurred_on -> Date,
        detected_on -> Date,
        reported_on -> Nullable<Date>,
        irb_reported_on -> Nullable<Date>,
        status -> Text,
        root_cause -> Nullable<Text>,
        corrective_action -> Nullable<Text>,
        preventive_action -> Nullable<Text>,
        capa_due_on -> Nullable<Date>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int4,
    }
}

diesel::table! {
    enrollment_reports (id) {
        id -> Uuid,
        study_id -> Uuid,
        site_id -> Uuid,
        week_start -> Date,
        screened -> Int4,
        screen_failed -> Int4,
        enrolled -> Int4,
        discontinued -> Int4,
        completed -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int4,
    }
}

diesel::joinable!(sites -> studies (study_id));
diesel::joinable!(sites -> vendors (cro_vendor_id));
diesel::joinable!(milestones -> studies (study_id));
diesel::joinable!(budget_lines -> studies (study_id));
diesel::joinable!(expenses -> budget_lines (budget_line_id));
diesel::joinable!(risks -> studies (study_id));
diesel::joinable!(deviations -> sites (site_id));
diesel::joinable!(enrollment_reports -> sites (site_id));
diesel::joinable!(audit_seals -> audit_events (event_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_clients,
    signing_keys,
    vendors,
    studies,
    sites,
    audit_chain,
    audit_events,
    audit_seals,
    audit_unsealed,
    rate_limit_windows,
    milestones,
    budget_lines,
    expenses,
    risks,
    deviations,
    enrollment_reports,
    idempotency_keys,
);

diesel::table! {
    idempotency_keys (client_id, key) {
        client_id -> Uuid,
        key -> Varchar,
        request_hash -> Text,
        state -> Text,
        response_status -> Nullable<Int4>,
        response_type -> Nullable<Text>,
        response_body -> Nullable<Bytea>,
        response_location -> Nullable<Text>,
        created_at -> Timestamptz,
        response_body_enc -> Nullable<Bytea>,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Uuid,
        owner_id -> Uuid,
        url -> Text,
        entity_types -> Array<Text>,
        secret -> Nullable<Text>,
        feed_position -> Int8,
        created_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        secret_enc -> Nullable<Bytea>,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Uuid,
        webhook_id -> Uuid,
        seq -> Int8,
        entity_type -> Text,
        entity_id -> Uuid,
        payload -> Jsonb,
        state -> Text,
        attempt_count -> Int4,
        next_attempt_at -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_attempts (delivery_id, attempt) {
        delivery_id -> Uuid,
        attempt -> Int4,
        at -> Timestamptz,
        response_status -> Nullable<Int4>,
        error -> Nullable<Text>,
    }
}

diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));
diesel::joinable!(webhook_attempts -> webhook_deliveries (delivery_id));
diesel::allow_tables_to_appear_in_same_query!(webhooks, webhook_deliveries, webhook_attempts);
