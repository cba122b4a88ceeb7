//! Web console sessions. A person signs in with their API token once; the console keeps a
//! random session secret in an HttpOnly cookie and only its SHA-256 here, with a CSRF token
//! per session. Sessions end on sign-out, after an idle period, or when the token is revoked
//! or expires.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bytea, Integer, Text};
use rand::RngCore;

use crate::error::DbError;
use crate::tokens::{hash_secret, Role};

/// A live session and who it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Session id.
    pub id: i64,
    /// The token it was opened with.
    pub token_id: i64,
    /// The token's name.
    pub name: String,
    /// The token's role.
    pub role: Role,
    /// The CSRF token every form of this session must carry.
    pub csrf: String,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    token_id: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Text)]
    csrf: String,
}

fn random(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Whether `secret` has the shape of a session cookie this module issues (64 hex digits), so
/// that anything else is refused without a database query.
pub fn well_formed_secret(secret: &str) -> bool {
    secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Opens a session for a valid token; returns the cookie secret and the session. `None` when
/// the token is unknown, revoked or expired (the caller says so without detail).
pub fn sign_in(conn: &mut PgConnection, token: &str) -> Result<Option<(String, Session)>, DbError> {
    let secret = random(32);
    let csrf = random(32);
    let row = diesel::sql_query(
        "WITH t AS (SELECT id, name, role FROM api_tokens
                     WHERE token_hash = $1 AND revoked_at IS NULL
                       AND (expires_on IS NULL
                            OR expires_on >= (now() AT TIME ZONE 'Asia/Tokyo')::date)),
              s AS (INSERT INTO console_sessions (secret_hash, token_id, csrf)
                    SELECT $2, id, $3 FROM t RETURNING id, token_id, csrf)
         SELECT s.id, s.token_id, t.name, t.role, s.csrf FROM s JOIN t ON t.id = s.token_id",
    )
    .bind::<Bytea, _>(hash_secret(token.trim()).as_slice())
    .bind::<Bytea, _>(hash_secret(&secret).as_slice())
    .bind::<Text, _>(&csrf)
    .get_result::<Row>(conn)
    .optional()?;
    Ok(match row {
        Some(r) => Some((secret, session(r)?)),
        None => None,
    })
}

fn session(r: Row) -> Result<Session, DbError> {
    Ok(Session {
        id: r.id,
        token_id: r.token_id,
        name: r.name,
        role: Role::parse(&r.role)?,
        csrf: r.csrf,
    })
}

/// The live session for a cookie secret, touching its last-seen time; `None` when unknown,
/// ended, idle for longer than `idle_minutes`, opened more than `max_hours` ago (however
/// busy: a stolen cookie must not live for ever), or its token is no longer valid.
pub fn resume(
    conn: &mut PgConnection,
    secret: &str,
    idle_minutes: i32,
    max_hours: i32,
) -> Result<Option<Session>, DbError> {
    let row = diesel::sql_query(
        "UPDATE console_sessions s SET last_seen_at = now()
           FROM api_tokens t
          WHERE s.secret_hash = $1 AND t.id = s.token_id AND s.ended_at IS NULL
            AND s.last_seen_at > now() - make_interval(mins => $2)
            AND s.created_at > now() - make_interval(hours => $3)
            AND t.revoked_at IS NULL
            AND (t.expires_on IS NULL OR t.expires_on >= (now() AT TIME ZONE 'Asia/Tokyo')::date)
        RETURNING s.id, s.token_id, t.name, t.role, s.csrf",
    )
    .bind::<Bytea, _>(hash_secret(secret).as_slice())
    .bind::<Integer, _>(idle_minutes)
    .bind::<Integer, _>(max_hours)
    .get_result::<Row>(conn)
    .optional()?;
    row.map(session).transpose()
}

/// Ends a session (sign-out).
pub fn sign_out(conn: &mut PgConnection, secret: &str) -> Result<(), DbError> {
    diesel::sql_query(
        "UPDATE console_sessions SET ended_at = now() WHERE secret_hash = $1 AND ended_at IS NULL",
    )
    .bind::<Bytea, _>(hash_secret(secret).as_slice())
    .execute(conn)?;
    Ok(())
}
