-- The access log's links become keyed (HMAC-SHA256 under a log key from the key file, which the
-- database never holds): `key_id` names the key. Entries written before this migration keep
-- their plain SHA-256 links and no key id, and still verify as they are; after the first keyed
-- entry, the verifier treats an unkeyed one as a forgery. New rows must carry a key id (NOT
-- VALID: the check applies to rows written from now on, not to the history).
ALTER TABLE access_log ADD COLUMN key_id integer;
ALTER TABLE access_log ADD CONSTRAINT access_log_keyed CHECK (key_id IS NOT NULL) NOT VALID;
COMMENT ON COLUMN access_log.hash IS
    'link to the previous entry: HMAC-SHA256 under log key key_id, or SHA-256 when key_id is NULL (entries from before the log was keyed)';
