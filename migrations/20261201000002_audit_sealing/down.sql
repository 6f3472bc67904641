-- Back to the chain fixed at insert: seal what is queued, move positions and hashes back
-- into the trail, and restore the locking trigger.
SELECT audit_seal(2147483647, true);
DROP FUNCTION audit_seal(integer, boolean);
DROP TRIGGER audit_events_enqueue ON audit_events;
DROP FUNCTION audit_events_enqueue();
DROP TABLE audit_unsealed;
ALTER TABLE audit_events ADD COLUMN seq bigint, ADD COLUMN prev_hash text, ADD COLUMN hash text;
ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
UPDATE audit_events e SET seq = s.seq, prev_hash = s.prev_hash, hash = s.hash
FROM audit_seals s WHERE s.event_id = e.id;
ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;
ALTER TABLE audit_events DROP CONSTRAINT audit_events_pkey CASCADE;
ALTER TABLE audit_events DROP COLUMN id;
ALTER TABLE audit_events ADD PRIMARY KEY (seq);
ALTER TABLE audit_events ALTER COLUMN prev_hash SET NOT NULL, ALTER COLUMN hash SET NOT NULL;
DROP TABLE audit_seals;
DROP FUNCTION audit_seals_refuse_change();
DROP FUNCTION audit_event_hash(audit_events, bigint, text);
CREATE FUNCTION audit_event_hash(e audit_events, prev text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to((
        jsonb_build_array(
            e.seq, prev, (extract(epoch FROM e.occurred_at) * 1000000)::bigint,
            e.actor, e.actor_name, e.role, e.action, e.entity_type, e.entity_id, e.study_id,
            e.entity_version, e.changes, e.data, e.reason, e.request_id
        )
        || CASE WHEN e.site_id IS NULL AND e.vendor_id IS NULL THEN '[]'::jsonb
                ELSE jsonb_build_array(e.site_id, e.vendor_id) END
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
CREATE TRIGGER audit_events_chain BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_chain();
CREATE INDEX audit_events_entity_idx ON audit_events (entity_type, entity_id, seq);
CREATE INDEX audit_events_study_idx ON audit_events (study_id, seq);
CREATE INDEX audit_events_site_idx ON audit_events (site_id, seq) WHERE site_id IS NOT NULL;
CREATE INDEX audit_events_vendor_idx ON audit_events (vendor_id, seq) WHERE vendor_id IS NOT NULL;
CREATE INDEX audit_events_actor_idx ON audit_events (actor, seq);
