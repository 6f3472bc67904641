-- The request path without a database write.
--
-- 1. Instances remember which clients are live and forget a client the moment PostgreSQL
--    says it changed: any update or delete of an API client (a revocation above all) is
--    announced on the `trialops_clients` channel, whoever made it (the API, the CLI, or SQL
--    typed by hand). NOTIFY is sent at commit, so a listener never hears of a change that
--    was rolled back.
CREATE FUNCTION api_clients_announce_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('trialops_clients', OLD.id::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER api_clients_announce_change
    AFTER UPDATE OR DELETE ON api_clients
    FOR EACH ROW EXECUTE FUNCTION api_clients_announce_change();

-- 2. The per-client rate limit is no longer counted request by request: each instance
--    leases a share of a client's budget for the current minute and spends it locally. The
--    window row now counts the budget leased out, not the requests answered.
ALTER TABLE rate_limit_windows RENAME COLUMN hits TO leased;
