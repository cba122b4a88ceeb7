-- Web console sessions: a personal API token is exchanged once for a session cookie. Only the
-- SHA-256 of the cookie's secret is stored; the CSRF token is per session.
CREATE TABLE console_sessions (
    id            bigserial PRIMARY KEY,
    secret_hash   bytea NOT NULL UNIQUE CHECK (octet_length(secret_hash) = 32),
    token_id      bigint NOT NULL REFERENCES api_tokens (id),
    csrf          text NOT NULL CHECK (length(csrf) >= 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    ended_at      timestamptz
);
CREATE INDEX console_sessions_token ON console_sessions (token_id);
