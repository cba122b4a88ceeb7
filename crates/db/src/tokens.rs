//! API bearer tokens: created by an administrator on the command line, shown once, stored only
//! as a SHA-256 hash. A token carries one role; the API decides what each role may do.

use base64::Engine;
use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bytea, Date, Nullable, Text, Timestamptz};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::DbError;

/// What a token may be used for. The API maps each route to the roles allowed on it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    /// Everything, including revealing a whole My Number (with a reason).
    Admin,
    /// Certificate and registry clerk: reads persons, registers and maintains linkages.
    Clerk,
    /// Works the audit's findings and the linkage actions that resolve them.
    Auditor,
    /// A clinic or pharmacy: eligibility answers only.
    Provider,
}

impl Role {
    /// Every role, in the order the documentation lists them.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Clerk, Role::Auditor, Role::Provider];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses a stored or typed role name.
    pub fn parse(s: &str) -> Result<Role, DbError> {
        s.parse().map_err(|_| {
            DbError::Invalid(format!(
                "unknown role {s:?}: expected admin, clerk, auditor or provider"
            ))
        })
    }

    /// 管理者, 窓口担当, 監査担当 or 医療機関: how the console names the role.
    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "管理者",
            Role::Clerk => "窓口担当",
            Role::Auditor => "監査担当",
            Role::Provider => "医療機関",
        }
    }
}

/// Prefix that makes a leaked token recognisable to secret scanners.
const PREFIX: &str = "shk_";

/// A new random token: `shk_` and 256 random bits from the operating system, base64url.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Whether `secret` has the shape of a token this project issues (`shk_` and 43 base64url
/// characters), so that anything else is refused without a database query.
pub fn well_formed(secret: &str) -> bool {
    secret.strip_prefix(PREFIX).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// The stored form of a token.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A token as listed: never the secret, which is not stored.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, serde::Serialize)]
pub struct TokenInfo {
    /// Database id, used to revoke it.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// Who or what it was issued to.
    #[diesel(sql_type = Text)]
    pub name: String,
    /// Its role.
    #[diesel(sql_type = Text)]
    pub role: String,
    /// Who created it.
    #[diesel(sql_type = Text)]
    pub created_by: String,
    /// When.
    #[diesel(sql_type = Timestamptz)]
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last day it works, if it expires.
    #[diesel(sql_type = Nullable<Date>)]
    pub expires_on: Option<NaiveDate>,
    /// When it was revoked, if it was.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

const SELECT: &str =
    "SELECT id, name, role, created_by, created_at, expires_on, revoked_at FROM api_tokens";

/// Creates a token and returns it with its secret, which exists nowhere else afterwards.
pub fn create(
    conn: &mut PgConnection,
    role: Role,
    name: &str,
    expires_on: Option<NaiveDate>,
    actor: &str,
) -> Result<(TokenInfo, String), DbError> {
    shikaku_domain::free_text::FreeText::TokenName.check(name)?;
    let secret = generate_secret();
    let info = diesel::sql_query(format!(
        "WITH t AS (INSERT INTO api_tokens (name, role, token_hash, created_by, expires_on)
                    VALUES ($1, $2, $3, $4, $5) RETURNING *)
         {} ",
        SELECT.replace("api_tokens", "t")
    ))
    .bind::<Text, _>(name.trim())
    .bind::<Text, _>(role.as_str())
    .bind::<Bytea, _>(hash_secret(&secret).as_slice())
    .bind::<Text, _>(actor)
    .bind::<Nullable<Date>, _>(expires_on)
    .get_result::<TokenInfo>(conn)?;
    Ok((info, secret))
}

/// Revokes a token; it stops working at once for new connections to the API and within the
/// API's token cache lifetime for running servers.
pub fn revoke(conn: &mut PgConnection, id: i64) -> Result<TokenInfo, DbError> {
    diesel::sql_query(format!(
        "WITH t AS (UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
                    WHERE id = $1 RETURNING *)
         {}",
        SELECT.replace("api_tokens", "t")
    ))
    .bind::<BigInt, _>(id)
    .get_result::<TokenInfo>(conn)
    .optional()?
    .ok_or_else(|| DbError::NotFound(format!("no token {id}")))
}

/// Every token, newest first.
pub fn list(conn: &mut PgConnection) -> Result<Vec<TokenInfo>, DbError> {
    Ok(diesel::sql_query(format!("{SELECT} ORDER BY id DESC")).load(conn)?)
}

/// A live token as the API authenticates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveToken {
    /// Token id.
    pub id: i64,
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Last valid day, if it expires.
    pub expires_on: Option<NaiveDate>,
}

/// The unrevoked token whose secret hashes to `hash`, on the API's async pool; `None` when
/// there is none (an expired token is returned: its expiry is the caller's to judge against
/// the day in Japan).
pub async fn find_live(
    conn: &mut diesel_async::AsyncPgConnection,
    hash: &[u8; 32],
) -> Result<Option<LiveToken>, DbError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Text)]
        role: String,
        #[diesel(sql_type = Nullable<Date>)]
        expires_on: Option<NaiveDate>,
    }
    let query = diesel::sql_query(
        "SELECT id, name, role, expires_on FROM api_tokens
         WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind::<Bytea, _>(hash.as_slice());
    // This module's other functions are sync diesel's; this one runs on the API's async pool.
    let row = diesel_async::RunQueryDsl::get_result::<Row>(query, conn)
        .await
        .optional()?;
    row.map(|r| {
        Ok(LiveToken {
            id: r.id,
            name: r.name,
            role: Role::parse(&r.role)?,
            expires_on: r.expires_on,
        })
    })
    .transpose()
}

#[cfg(test)]
mod shape_tests {
    #[test]
    fn issued_tokens_are_well_formed_and_others_are_not() {
        assert!(super::well_formed(&super::generate_secret()));
        for bad in ["", "shk_", "shk_not-a-token", "abc", &"shk_x".repeat(20)] {
            assert!(!super::well_formed(bad), "{bad}");
        }
    }
}
