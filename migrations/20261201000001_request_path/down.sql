ALTER TABLE rate_limit_windows RENAME COLUMN leased TO hits;
DROP TRIGGER IF EXISTS api_clients_announce_change ON api_clients;
DROP FUNCTION IF EXISTS api_clients_announce_change();
