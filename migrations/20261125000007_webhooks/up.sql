-- Webhooks: push the change feed to partner systems.
--
-- A subscription follows the feed from `feed_position` on; the dispatcher copies each new
-- change its owner may see into `webhook_deliveries`, then sends the due deliveries. All
-- of it lives here, not in a process: deliveries survive a restart, and several instances
-- share the work by claiming rows with FOR UPDATE SKIP LOCKED.
CREATE TABLE webhooks (
    id             uuid        PRIMARY KEY,
    owner_id       uuid        NOT NULL REFERENCES api_clients (id),
    url            text        NOT NULL,
    entity_types   text[]      NOT NULL,
    -- The HMAC key must be at hand to sign each delivery, so it is kept as issued (a hash
    -- would not do); it is answered once, at creation.
    secret         text        NOT NULL,
    -- The last feed `seq` already turned into deliveries (or skipped as not visible).
    feed_position  bigint      NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz
);
CREATE INDEX webhooks_owner_idx ON webhooks (owner_id) WHERE deleted_at IS NULL;

CREATE TABLE webhook_deliveries (
    id              uuid        PRIMARY KEY,
    webhook_id      uuid        NOT NULL REFERENCES webhooks (id),
    seq             bigint      NOT NULL,
    entity_type     text        NOT NULL,
    entity_id       uuid        NOT NULL,
    -- The change-feed item, exactly as sent (every attempt sends the same body).
    payload         jsonb       NOT NULL,
    state           text        NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'failed')),
    attempt_count   integer     NOT NULL DEFAULT 0,
    -- When the next attempt is due; while an attempt is in flight, when its claim lapses.
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (webhook_id, seq)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_entity_idx ON webhook_deliveries (webhook_id, entity_id, seq)
    WHERE state = 'pending';

CREATE TABLE webhook_attempts (
    delivery_id     uuid        NOT NULL REFERENCES webhook_deliveries (id),
    attempt         integer     NOT NULL,
    at              timestamptz NOT NULL DEFAULT now(),
    response_status integer,
    error           text,
    PRIMARY KEY (delivery_id, attempt)
);
