-- The API's access control and its tamper-evident access log.

-- Bearer tokens. Only the SHA-256 of a token is stored: a token is 256 random bits, so a plain
-- hash is as strong as a slow one and lets every request be checked with one index probe.
CREATE TABLE api_tokens (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL CHECK (name <> ''),
    role        text NOT NULL CHECK (role IN ('admin', 'clerk', 'auditor', 'provider')),
    token_hash  bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Last day the token works (Asia/Tokyo); NULL = until revoked.
    expires_on  date,
    revoked_at  timestamptz
);

-- Every eligibility answer, person read, number reveal and write, append-only and hash-chained:
-- hash = SHA-256(prev_hash || canonical JSON of the entry), so editing, deleting or reordering
-- any entry breaks the chain from there on (`shikaku access-log verify`). seq is assigned by
-- the writer, gap-free, rather than by a sequence (sequences skip numbers on rollback, and a
-- gap must mean a deleted entry); being the primary key, it also stops two writers from
-- forking the chain: the one with a stale head fails and re-reads it.
CREATE TABLE access_log (
    seq        bigint PRIMARY KEY CHECK (seq > 0),
    at         timestamptz NOT NULL,
    token_id   bigint,
    actor      text NOT NULL,
    role       text NOT NULL,
    action     text NOT NULL,
    subject    text,
    request    jsonb NOT NULL,
    response   jsonb NOT NULL,
    reason     text,
    prev_hash  bytea NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash       bytea NOT NULL CHECK (octet_length(hash) = 32)
);
-- "Who read this person's data?" Only this one index besides the key: every answer writes a
-- row, so each index is paid for on the hot path (reads by token or actor scan by seq).
CREATE INDEX access_log_subject ON access_log (subject, seq) WHERE subject IS NOT NULL;

-- The database itself refuses to change or remove an entry, whoever asks. (A superuser can
-- still disable the trigger; the hash chain is what detects that.)
CREATE FUNCTION access_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'insufficient_privilege',
        MESSAGE = format('access_log is append-only: %s refused', TG_OP);
END
$$;

CREATE TRIGGER access_log_append_only
    BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_refuse_change();
CREATE TRIGGER access_log_no_truncate
    BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_refuse_change();
