//! The API's one error type and the one place HTTP statuses are decided. Bodies are always
//! `{"error": "snake_case_code", "message": "..."}`; a 500's message is generic and the cause is
//! logged, never sent. No message carries a My Number: the layers below never put one in.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use shikaku_db::DbError;
use shikaku_domain::Field;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request cannot be read (malformed JSON, wrong content type).
    #[error("{0}")]
    BadRequest(String),
    /// No token, or one that is unknown, expired or revoked.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// The token's role may not use this route.
    #[error("the {0} role may not use this route")]
    Forbidden(&'static str),
    /// No such record or route.
    #[error("{0}")]
    NotFound(String),
    /// Clashes with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// A number linked to other persons: answered as a conflict; the handler logs the persons.
    #[error("{message}")]
    LinkedElsewhere {
        /// What the caller is told.
        message: String,
        /// Who else holds the number (logged, never answered).
        person_ids: Vec<i64>,
    },
    /// A new or corrected linkage whose person differs from the resident register on some of
    /// the five items (no 理由付き疑いなし reason given): a 409 with [`ConflictBody::IdentityMismatch`]
    /// naming the items, never a value or the number.
    #[error(
        "the person's 5 items differ from the resident register on {}; correct the registry, or \
         repeat the request with `{OVERRIDE_FIELD}` (理由付き疑いなし: no error, with a reason)",
        shikaku_db::identity_check::item_names(.differing)
    )]
    IdentityMismatch {
        /// The items that differ.
        differing: Vec<Field>,
        /// The items that could not be compared (absent on a side).
        not_compared: Vec<Field>,
    },
    /// The body is larger than allowed.
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// Readable but not valid (a field's format, a missing reason, wrong types).
    #[error("{0}")]
    Invalid(String),
    /// Too many eligibility answers for this token; retry after the given seconds.
    #[error("rate limit reached for this token; retry after {0} s")]
    RateLimited(u64),
    /// The database (or the access log behind it) cannot be reached right now.
    #[error("{0}")]
    Unavailable(String),
    /// The key file changed under this server (a key it does not hold yet, or index keys
    /// rotated): it reloads the file, and the request can be repeated.
    #[error("the keys changed; the server reloaded them, please retry ({0})")]
    KeysChanged(String),
    /// Anything else: logged with its cause, answered with a generic message.
    #[error("internal error")]
    Internal(String),
}

/// The JSON error body, pinned by a test.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case code.
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
}

/// The request field that registers a linkage despite a five-item mismatch (理由付き疑いなし).
pub const OVERRIDE_FIELD: &str = "no_error_reason";

/// A 409 from registering or correcting a number: either a plain conflict (the number is
/// already linked) or a five-item mismatch with the register, told apart by `error`, so a
/// client knows which items to check and that `no_error_reason` would register it anyway.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum ConflictBody {
    /// The number is already linked (to another person without `force_reason`, or to this one),
    /// or a database rule refused the change.
    Conflict {
        /// What went wrong, for people.
        message: String,
    },
    /// The person's five items differ from the latest resident register record for the number.
    IdentityMismatch {
        /// What went wrong and how to proceed, for people (no value, no number).
        message: String,
        /// The items that differ beyond spelling variants, in the order of the five items.
        differing: Vec<Field>,
        /// Items one side lacks (kana, address, or sex unset): not compared, not a mismatch.
        not_compared: Vec<Field>,
        /// The request field that registers it anyway with a 理由付き疑いなし reason
        /// (`no_error_reason`).
        override_field: String,
    },
}

impl ApiError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) | ApiError::LinkedElsewhere { .. } => "conflict",
            ApiError::IdentityMismatch { .. } => "identity_mismatch",
            ApiError::TooLarge(_) => "payload_too_large",
            ApiError::Invalid(_) => "invalid",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::KeysChanged(_) => "keys_changed",
            ApiError::Internal(_) => "internal",
        }
    }

    /// A body for this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.code().to_string(),
            message: self.to_string(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_)
            | ApiError::LinkedElsewhere { .. }
            | ApiError::IdentityMismatch { .. } => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::KeysChanged(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(%cause, "request failed");
        }
        let mut res = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unauthorized => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::RateLimited(secs) => {
                res.insert_header((header::RETRY_AFTER, secs.to_string()));
            }
            ApiError::Unavailable(_) | ApiError::KeysChanged(_) => {
                res.insert_header((header::RETRY_AFTER, "1"));
            }
            _ => {}
        }
        if let ApiError::IdentityMismatch {
            differing,
            not_compared,
        } = self
        {
            return res.json(ConflictBody::IdentityMismatch {
                message: self.to_string(),
                differing: differing.clone(),
                not_compared: not_compared.clone(),
                override_field: OVERRIDE_FIELD.to_string(),
            });
        }
        res.json(self.body())
    }
}

/// True when a diesel error means the server went away rather than the query being wrong.
fn is_disconnect(e: &DieselError) -> bool {
    match e {
        // UnableToSendCommand: diesel-async's kind for a socket-level failure (no SQLSTATE).
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
        | DieselError::DatabaseError(DatabaseErrorKind::UnableToSendCommand, _)
        | DieselError::BrokenTransactionManager => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let m = info.message();
            m.contains("connection") || m.contains("terminating") || m.contains("shutting down")
        }
        _ => false,
    }
}

/// PostgreSQL's data exceptions (class 22), recognised by message since diesel does not expose
/// the SQLSTATE of an unclassified error.
fn is_data_exception(message: &str) -> bool {
    [
        "out of range",
        "invalid byte sequence",
        "invalid input syntax",
        "value too long",
        "invalid input value",
        "numeric field overflow",
        "date/time field value out of range",
        "unsupported Unicode escape sequence",
    ]
    .iter()
    .any(|m| message.contains(m))
}

impl From<DieselError> for ApiError {
    fn from(e: DieselError) -> Self {
        match &e {
            DieselError::NotFound => ApiError::NotFound("not found".to_string()),
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                ApiError::Conflict(format!(
                    "already exists ({})",
                    info.constraint_name().unwrap_or("unique")
                ))
            }
            // The handlers validate first; these are the database's own rules catching what
            // validation missed. They are the caller's fault, so 4xx, naming the rule (never a
            // value: PostgreSQL's messages for these carry none beyond names).
            DieselError::DatabaseError(
                DatabaseErrorKind::CheckViolation | DatabaseErrorKind::ExclusionViolation,
                info,
            ) => ApiError::Invalid(format!(
                "the request breaks the rule {} of {}",
                info.constraint_name().unwrap_or("(unnamed)"),
                info.table_name().unwrap_or("the registry")
            )),
            DieselError::DatabaseError(DatabaseErrorKind::NotNullViolation, info) => {
                ApiError::Invalid(format!(
                    "{} is required",
                    info.column_name().unwrap_or("a value")
                ))
            }
            DieselError::DatabaseError(
                DatabaseErrorKind::ForeignKeyViolation | DatabaseErrorKind::RestrictViolation,
                info,
            ) => ApiError::Conflict(format!(
                "refers to a record that does not exist, or is still referred to ({})",
                info.constraint_name().unwrap_or("foreign key")
            )),
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
                ApiError::Conflict("changed by someone else at the same time; try again".into())
            }
            _ if is_disconnect(&e) => ApiError::Unavailable("the database is unavailable".into()),
            // Data exceptions (SQLSTATE class 22: a value out of range, bad encoding …) quote
            // the value, so the message is not passed on.
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)
                if is_data_exception(info.message()) =>
            {
                tracing::warn!(cause = %redact_numbers(info.message()), "value refused by the database");
                ApiError::Invalid("a value is out of range or not acceptable".into())
            }
            _ => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound(m) => ApiError::NotFound(m),
            DbError::Invalid(m) => ApiError::Invalid(m),
            DbError::Conflict(m) => ApiError::Conflict(m),
            DbError::LinkedElsewhere {
                message,
                person_ids,
            } => ApiError::LinkedElsewhere {
                message,
                person_ids,
            },
            DbError::IdentityMismatch {
                differing,
                not_compared,
            } => ApiError::IdentityMismatch {
                differing,
                not_compared,
            },
            DbError::Connect(_) => ApiError::Unavailable("the database is unavailable".into()),
            DbError::KeysChanged(m) => ApiError::KeysChanged(m),
            DbError::Key(shikaku_domain::DomainError::UnknownKeyId(id)) => {
                ApiError::KeysChanged(format!("a number is sealed with key {id}"))
            }
            DbError::Query(q) => ApiError::from(q),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<shikaku_domain::DomainError> for ApiError {
    fn from(e: shikaku_domain::DomainError) -> Self {
        ApiError::Invalid(e.to_string())
    }
}

/// Maps a JSON body that could not be read: too large → 413, not JSON at all → 400, JSON of
/// the wrong shape (types, unknown or missing fields) → 422.
pub fn json_error(err: actix_web::error::JsonPayloadError, limit: usize) -> ApiError {
    use actix_web::error::JsonPayloadError as J;
    match err {
        J::Overflow { .. } | J::OverflowKnownLength { .. } => ApiError::TooLarge(limit),
        J::ContentType => {
            ApiError::BadRequest("the body must be JSON (Content-Type: application/json)".into())
        }
        J::Deserialize(e) if e.is_data() => {
            ApiError::Invalid(redact_numbers(&format!("invalid request body: {e}")))
        }
        J::Deserialize(e) => ApiError::BadRequest(redact_numbers(&format!("malformed JSON: {e}"))),
        other => ApiError::BadRequest(format!("cannot read the body: {other}")),
    }
}

/// serde's and PostgreSQL's messages quote the offending value ("invalid type: integer
/// `123456789018`"), which for a number sent in the wrong place would be a whole My Number; the
/// domain's redaction removes every long digit run.
pub use shikaku_domain::free_text::redact_numbers;
