-- A hash chain over the audit trail, with its order fixed at commit.
--
-- One row, `audit_chain`, holds the last sequence number and hash. Inserting an audit event
-- locks that row (until the writer commits), takes the next number, and chains the event's
-- hash to its predecessor's. Writers therefore commit in sequence order: whoever can see
-- event N can see every event before it, so `seq` is a gap-free, commit-ordered position
-- (what a change feed needs), and the chain has no forks.

CREATE TABLE audit_chain (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_seq  bigint  NOT NULL,
    last_hash text    NOT NULL
);

ALTER TABLE audit_events ADD COLUMN prev_hash text;
ALTER TABLE audit_events ADD COLUMN hash text;
ALTER TABLE audit_events ALTER COLUMN seq DROP DEFAULT;
DROP SEQUENCE IF EXISTS audit_events_seq_seq;

-- The hashed text: every field of the event, as a JSON array (unambiguous, and jsonb's text
-- form is canonical), the time as microseconds since the epoch (independent of the
-- session's time zone).
CREATE FUNCTION audit_event_hash(e audit_events, prev text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(jsonb_build_array(
        e.seq, prev, (extract(epoch FROM e.occurred_at) * 1000000)::bigint,
        e.actor, e.actor_name, e.role, e.action, e.entity_type, e.entity_id, e.study_id,
        e.entity_version, e.changes, e.data, e.reason, e.request_id
    )::text, 'UTF8')), 'hex')
$$;

CREATE FUNCTION audit_events_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    chain audit_chain%ROWTYPE;
BEGIN
    SELECT * INTO chain FROM audit_chain WHERE id FOR UPDATE;
    NEW.seq := chain.last_seq + 1;
    NEW.prev_hash := chain.last_hash;
    NEW.hash := audit_event_hash(NEW, chain.last_hash);
    UPDATE audit_chain SET last_seq = NEW.seq, last_hash = NEW.hash WHERE id;
    RETURN NEW;
END;
$$;

-- Events written before the chain existed are chained now, in their order.
ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
DO $$
DECLARE
    e audit_events%ROWTYPE;
    prev text := repeat('0', 64);
    next_hash text;
    last bigint := 0;
BEGIN
    FOR e IN SELECT * FROM audit_events ORDER BY seq LOOP
        next_hash := audit_event_hash(e, prev);
        UPDATE audit_events SET prev_hash = prev, hash = next_hash WHERE seq = e.seq;
        prev := next_hash;
        last := e.seq;
    END LOOP;
    INSERT INTO audit_chain (last_seq, last_hash) VALUES (last, prev);
END;
$$;
ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;

ALTER TABLE audit_events ALTER COLUMN prev_hash SET NOT NULL;
ALTER TABLE audit_events ALTER COLUMN hash SET NOT NULL;

CREATE TRIGGER audit_events_chain
    BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_chain();

-- The chain row is the trail's head: it may move forward only through new events.
CREATE TRIGGER audit_chain_no_delete
    BEFORE DELETE OR TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();

CREATE INDEX audit_events_actor_idx ON audit_events (actor, seq);
CREATE INDEX audit_events_occurred_at_idx ON audit_events (occurred_at);
