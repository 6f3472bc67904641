DROP INDEX audit_events_vendor_idx;
DROP INDEX audit_events_site_idx;
CREATE OR REPLACE FUNCTION audit_event_hash(e audit_events, prev text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(jsonb_build_array(
        e.seq, prev, (extract(epoch FROM e.occurred_at) * 1000000)::bigint,
        e.actor, e.actor_name, e.role, e.action, e.entity_type, e.entity_id, e.study_id,
        e.entity_version, e.changes, e.data, e.reason, e.request_id
    )::text, 'UTF8')), 'hex')
$$;
ALTER TABLE audit_events DROP COLUMN vendor_id;
ALTER TABLE audit_events DROP COLUMN site_id;
