//! 保険者 (insurers): the registry's top-level partition and each one's certificate policy.

use diesel::prelude::*;

use crate::error::DbError;
use crate::schema::insurers;

/// An insurer as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = insurers)]
pub struct Insurer {
    /// 保険者番号, 8 digits (国保 numbers padded).
    pub insurer_number: String,
    /// 保険者名称; empty when first seen in an import and not yet named.
    pub name: String,
    /// kyokai, kumiai, kyosai, kokuho, koki, other or unknown.
    pub kind: String,
    /// How certificate validity is set: years_from_issue, fixed_date or yearly_july.
    pub cert_policy: String,
    /// Years of validity for years_from_issue (at most 5).
    pub cert_years: i16,
    /// The common expiry date for fixed_date.
    pub cert_fixed_until: Option<chrono::NaiveDate>,
    /// Whether certificates print the 限度額適用区分 and 特定疾病 (optional printed items).
    pub cert_prints_benefits: bool,
}

/// Fields an administrator sets with `shikaku insurers add`.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = insurers)]
pub struct NewInsurer {
    /// 保険者番号, already validated and padded to 8 digits.
    pub insurer_number: String,
    /// 保険者名称.
    pub name: String,
    /// Kind of insurer (see [`Insurer::kind`]).
    pub kind: String,
    /// Certificate validity policy.
    pub cert_policy: String,
    /// Years for years_from_issue.
    pub cert_years: i16,
    /// Common expiry for fixed_date.
    pub cert_fixed_until: Option<chrono::NaiveDate>,
    /// Print the 限度額適用区分 and 特定疾病 on certificates.
    pub cert_prints_benefits: bool,
}

/// Creates the insurer or updates it when the number exists; returns whether it was new.
pub fn upsert(conn: &mut PgConnection, insurer: &NewInsurer) -> Result<bool, DbError> {
    let existed = diesel::select(diesel::dsl::exists(
        insurers::table.filter(insurers::insurer_number.eq(&insurer.insurer_number)),
    ))
    .get_result::<bool>(conn)?;
    diesel::insert_into(insurers::table)
        .values(insurer)
        .on_conflict(insurers::insurer_number)
        .do_update()
        .set((insurer, insurers::updated_at.eq(diesel::dsl::now)))
        .execute(conn)?;
    Ok(!existed)
}

/// Every insurer, by number.
pub fn list(conn: &mut PgConnection) -> Result<Vec<Insurer>, DbError> {
    Ok(insurers::table
        .order(insurers::insurer_number)
        .select(Insurer::as_select())
        .load(conn)?)
}
