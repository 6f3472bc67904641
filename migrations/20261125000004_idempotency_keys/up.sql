-- Idempotency-Key on POST (contract section 5): per client, kept at least 24 hours. A row is
-- claimed before the request runs (state 'in_progress', so a concurrent request with the
-- same key is refused instead of creating a second record) and holds the answer once it is
-- known, to be replayed.
CREATE TABLE idempotency_keys (
    client_id       uuid         NOT NULL,
    key             varchar(255) NOT NULL,
    request_hash    text         NOT NULL,
    state           text         NOT NULL CHECK (state IN ('in_progress', 'completed')),
    response_status integer,
    response_type   text,
    response_body   bytea,
    response_location text,
    created_at      timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, key)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
