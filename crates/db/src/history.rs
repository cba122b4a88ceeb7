//! One entry of a record's history (a certificate's, a finding's): what happened, why, who
//! and when. Each history table has more columns of its own; this is what people read.

use diesel::sql_types::{Nullable, Text, Timestamptz};
use diesel::QueryableByName;

/// One entry of a history, as read back.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// What happened (issued, reissued, revoked …; detected, confirmed, dismissed …).
    #[diesel(sql_type = Text)]
    pub action: String,
    /// Why.
    #[diesel(sql_type = Nullable<Text>)]
    pub reason: Option<String>,
    /// Who.
    #[diesel(sql_type = Text)]
    pub actor: String,
    /// When.
    #[diesel(sql_type = Timestamptz)]
    pub at: chrono::DateTime<chrono::Utc>,
}
