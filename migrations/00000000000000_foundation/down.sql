DROP TABLE IF EXISTS audit_events;
DROP FUNCTION IF EXISTS audit_events_refuse_change();
DROP TABLE IF EXISTS sites;
DROP TABLE IF EXISTS studies;
DROP TABLE IF EXISTS vendors;
DROP TABLE IF EXISTS signing_keys;
DROP TABLE IF EXISTS api_clients;
