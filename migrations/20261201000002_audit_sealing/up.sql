-- Audit events are written freely and sealed afterwards.
--
-- Until now every audit insert locked the one `audit_chain` row until its transaction
-- committed, so writers committed one at a time (and PostgreSQL's group commit never
-- helped). Now a writer only inserts its event, and a trigger queues the event's id in
-- `audit_unsealed`. One sealer at a time (a transaction-scoped advisory lock, taken by
-- whichever instance gets there first) takes the queued events it can see, in id order,
-- and appends to `audit_seals` their feed position (`seq`) and chain hash. Positions are
-- handed out in sealing transactions that follow one another, so a reader that sees
-- position N sees every position before it: the change feed and the audit trail's `seq`
-- keep their meaning (gap-free, in the order events became visible). A writer that
-- commits late is simply sealed later; no one waits for the oldest running transaction.
--
-- The trail itself (`audit_events`) stays insert-only, and so does `audit_seals`.
-- See docs/decisions.md #20.

-- 1. Refuse to migrate a trail whose chain does not verify as it stands.
DO $$
DECLARE
    e audit_events%ROWTYPE;
    prev text := repeat('0', 64);
    checked bigint := 0;
BEGIN
    FOR e IN SELECT * FROM audit_events ORDER BY seq LOOP
        IF e.prev_hash <> prev OR e.hash <> audit_event_hash(e, prev) THEN
            RAISE EXCEPTION 'audit chain broken at seq % before sealing migration', e.seq;
        END IF;
        prev := e.hash;
        checked := checked + 1;
    END LOOP;
    IF checked > 0 AND NOT EXISTS (
        SELECT 1 FROM audit_chain WHERE last_hash = prev AND last_seq = (SELECT max(seq) FROM audit_events)
    ) THEN
        RAISE EXCEPTION 'audit chain head does not match the last event';
    END IF;
    RAISE NOTICE 'audit chain verified before sealing migration: % events', checked;
END;
$$;

-- 2. The trail's own key becomes the event's id (insert order, not a feed position).
DROP TRIGGER audit_events_chain ON audit_events;
DROP FUNCTION audit_events_chain();
DROP FUNCTION audit_event_hash(audit_events, text);
ALTER TABLE audit_events RENAME COLUMN seq TO id;
CREATE SEQUENCE audit_events_id_seq OWNED BY audit_events.id;
SELECT setval('audit_events_id_seq', coalesce((SELECT max(id) FROM audit_events), 0) + 1, false);
ALTER TABLE audit_events ALTER COLUMN id SET DEFAULT nextval('audit_events_id_seq');

-- The same hashed text as before, with the position passed in: an event sealed at
-- position N hashes exactly as the old chain hashed event N.
CREATE FUNCTION audit_event_hash(e audit_events, at_seq bigint, prev text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to((
        jsonb_build_array(
            at_seq, prev, (extract(epoch FROM e.occurred_at) * 1000000)::bigint,
            e.actor, e.actor_name, e.role, e.action, e.entity_type, e.entity_id, e.study_id,
            e.entity_version, e.changes, e.data, e.reason, e.request_id
        )
        || CASE WHEN e.site_id IS NULL AND e.vendor_id IS NULL THEN '[]'::jsonb
                ELSE jsonb_build_array(e.site_id, e.vendor_id) END
    )::text, 'UTF8')), 'hex')
$$;

-- 3. Seals: position, link and hash of each sealed event, plus copies of the keys the
--    change feed filters on (so a scoped reader's page is found by index without reading
--    the events; `/verify` checks the copies against the events).
CREATE TABLE audit_seals (
    seq         bigint      PRIMARY KEY,
    event_id    bigint      NOT NULL UNIQUE REFERENCES audit_events (id),
    prev_hash   text        NOT NULL,
    hash        text        NOT NULL,
    sealed_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    entity_type text        NOT NULL,
    entity_id   uuid        NOT NULL,
    study_id    uuid,
    site_id     uuid,
    vendor_id   uuid
);
CREATE INDEX audit_seals_entity_idx ON audit_seals (entity_type, entity_id, seq);
CREATE INDEX audit_seals_study_idx ON audit_seals (study_id, seq);
CREATE INDEX audit_seals_site_idx ON audit_seals (site_id, seq) WHERE site_id IS NOT NULL;
CREATE INDEX audit_seals_vendor_idx ON audit_seals (vendor_id, seq) WHERE vendor_id IS NOT NULL;

CREATE FUNCTION audit_seals_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_seals is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_seals_append_only
    BEFORE UPDATE OR DELETE ON audit_seals
    FOR EACH ROW EXECUTE FUNCTION audit_seals_refuse_change();
CREATE TRIGGER audit_seals_no_truncate
    BEFORE TRUNCATE ON audit_seals
    FOR EACH STATEMENT EXECUTE FUNCTION audit_seals_refuse_change();

-- 4. The existing positions and hashes move over unchanged, then are checked again with
--    the new function before the old columns go.
INSERT INTO audit_seals (seq, event_id, prev_hash, hash, sealed_at,
                         entity_type, entity_id, study_id, site_id, vendor_id)
SELECT id, id, prev_hash, hash, occurred_at, entity_type, entity_id, study_id, site_id, vendor_id
FROM audit_events ORDER BY id;

DO $$
DECLARE
    s record;
    prev text := repeat('0', 64);
    checked bigint := 0;
BEGIN
    FOR s IN SELECT a.seq, a.prev_hash, a.hash, audit_event_hash(e, a.seq, a.prev_hash) AS recomputed
             FROM audit_seals a JOIN audit_events e ON e.id = a.event_id ORDER BY a.seq LOOP
        IF s.prev_hash <> prev OR s.hash <> s.recomputed THEN
            RAISE EXCEPTION 'audit chain broken at seq % after sealing migration', s.seq;
        END IF;
        prev := s.hash;
        checked := checked + 1;
    END LOOP;
    RAISE NOTICE 'audit chain verified after sealing migration: % events', checked;
END;
$$;

ALTER TABLE audit_events DROP COLUMN prev_hash, DROP COLUMN hash;
-- Scoped feed reads now use the seals' indexes; the trail keeps the ones its own filters use.
DROP INDEX IF EXISTS audit_events_site_idx;
DROP INDEX IF EXISTS audit_events_vendor_idx;
DROP INDEX IF EXISTS audit_events_study_idx;
DROP INDEX IF EXISTS audit_events_entity_idx;

-- 5. The queue of events not sealed yet: what the sealer reads instead of scanning the
--    trail. Rows are removed in the sealing transaction that seals them.
CREATE TABLE audit_unsealed (event_id bigint PRIMARY KEY);
CREATE FUNCTION audit_events_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_unsealed (event_id) VALUES (NEW.id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER audit_events_enqueue
    AFTER INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_enqueue();

-- 6. Seals up to `max_events` queued events, oldest id first, and answers how many. With
--    `wait` false it gives up at once when another sealer holds the lock (the background
--    loop); with `wait` true it waits for it (a reader that must see everything committed
--    before it asked). The head row `audit_chain` is written by sealers only.
CREATE FUNCTION audit_seal(max_events integer, wait boolean) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    head audit_chain%ROWTYPE;
    ids bigint[];
    e audit_events%ROWTYPE;
    seqs bigint[] := '{}';
    event_ids bigint[] := '{}';
    prevs text[] := '{}';
    hashes text[] := '{}';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM audit_unsealed) THEN
        RETURN 0;
    END IF;
    IF wait THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('trialops audit sealer', 0));
    ELSIF NOT pg_try_advisory_xact_lock(hashtextextended('trialops audit sealer', 0)) THEN
        RETURN 0;
    END IF;
    SELECT * INTO head FROM audit_chain WHERE id FOR UPDATE;
    SELECT array_agg(event_id ORDER BY event_id) INTO ids
    FROM (SELECT event_id FROM audit_unsealed ORDER BY event_id LIMIT max_events) queued;
    IF ids IS NULL THEN
        RETURN 0;
    END IF;
    DELETE FROM audit_unsealed WHERE event_id = ANY (ids);
    -- The chain is sequential; the hashes are computed one by one, the seals written in
    -- one statement.
    FOR e IN SELECT * FROM audit_events WHERE id = ANY (ids) ORDER BY id LOOP
        seqs := seqs || (head.last_seq + 1);
        event_ids := event_ids || e.id;
        prevs := prevs || head.last_hash;
        head.last_seq := head.last_seq + 1;
        head.last_hash := audit_event_hash(e, head.last_seq, head.last_hash);
        hashes := hashes || head.last_hash;
    END LOOP;
    INSERT INTO audit_seals (seq, event_id, prev_hash, hash,
                             entity_type, entity_id, study_id, site_id, vendor_id)
    SELECT s.seq, s.event_id, s.prev_hash, s.hash,
           ev.entity_type, ev.entity_id, ev.study_id, ev.site_id, ev.vendor_id
    FROM unnest(seqs, event_ids, prevs, hashes) AS s (seq, event_id, prev_hash, hash)
    JOIN audit_events ev ON ev.id = s.event_id;
    UPDATE audit_chain SET last_seq = head.last_seq, last_hash = head.last_hash WHERE id;
    RETURN cardinality(seqs);
END;
$$;
