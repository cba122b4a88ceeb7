COMMENT ON COLUMN access_log.hash IS NULL;
ALTER TABLE access_log DROP CONSTRAINT access_log_keyed;
ALTER TABLE access_log DROP COLUMN key_id;
