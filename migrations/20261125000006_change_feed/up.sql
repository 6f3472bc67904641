-- The change feed is served from the audit trail. Roles scoped to sites or to a vendor see
-- the changes of rows naming their site or vendor; a delete carries no row (`data` is
-- null), so the site and vendor a change concerns are kept beside it.
ALTER TABLE audit_events ADD COLUMN site_id uuid;
ALTER TABLE audit_events ADD COLUMN vendor_id uuid;

-- The two keys join the hashed text, but only when set: every event written before them
-- hashes exactly as it did, so the existing chain still verifies.
CREATE OR REPLACE FUNCTION audit_event_hash(e audit_events, prev text) RETURNS text
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

CREATE INDEX audit_events_site_idx ON audit_events (site_id, seq) WHERE site_id IS NOT NULL;
CREATE INDEX audit_events_vendor_idx ON audit_events (vendor_id, seq) WHERE vendor_id IS NOT NULL;
