-- Signing keys out of a database reader's reach, key rotation, signed audit checkpoints.
--
-- 1. A private key is kept either in plain PKCS#8 (`private_der`, only while no
--    TRIALOPS_KEY_ENCRYPTION_KEY is configured) or sealed with AES-256-GCM under that key
--    (`private_enc` = 12-byte nonce || ciphertext || tag, the kid as associated data), or
--    not at all: the public half of a key given in TRIALOPS_SIGNING_KEY_PEM, and every
--    retired key (its private half is erased when it retires; it never signs again).
ALTER TABLE signing_keys ALTER COLUMN private_der DROP NOT NULL;
ALTER TABLE signing_keys ADD COLUMN private_enc bytea;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_one_private_form
    CHECK (private_der IS NULL OR private_enc IS NULL);

-- 2. Rotation: a key is published when inserted, and signs from `signing_from` on (a
--    moment after its publication, so every instance knows it before any token it signed
--    arrives). A superseded key verifies tokens until `tokens_until` (the last token it
--    signed has expired, plus an allowance for clock skew), then retires.
ALTER TABLE signing_keys ADD COLUMN signing_from timestamptz;
ALTER TABLE signing_keys ADD COLUMN tokens_until timestamptz;
UPDATE signing_keys SET signing_from = created_at WHERE private_der IS NOT NULL;

-- 3. A key that signed an audit checkpoint stays published forever, even retired.
ALTER TABLE signing_keys ADD COLUMN signed_checkpoint boolean NOT NULL DEFAULT false;

-- 4. Every instance reloads its key set the moment the set changes, whoever changed it.
CREATE FUNCTION signing_keys_announce_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('trialops_signing_keys', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER signing_keys_announce_change
    AFTER INSERT OR UPDATE OR DELETE ON signing_keys
    FOR EACH ROW EXECUTE FUNCTION signing_keys_announce_change();

-- 5. A webhook's secret may be sealed under the same key (`secret_enc`), like an
--    Idempotency-Key's kept answer (`response_body_enc`); the plain columns are then NULL.
ALTER TABLE webhooks ALTER COLUMN secret DROP NOT NULL;
ALTER TABLE webhooks ADD COLUMN secret_enc bytea;
ALTER TABLE webhooks ADD CONSTRAINT webhooks_secret_present
    CHECK ((secret IS NULL) <> (secret_enc IS NULL));
ALTER TABLE idempotency_keys ADD COLUMN response_body_enc bytea;
