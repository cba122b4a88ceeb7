//! A change of co-pay rate or 限度額適用区分 recorded after a certificate was issued: the
//! certificate shows what was in force when it was issued, so it ends the day before the
//! change (domain.md: cut short by a change of co-pay rate; reissued on a change of category),
//! and the monthly run issues the replacement from the change. A pending renewal whose first
//! day already falls under different terms is void before it starts. The rule (the first day
//! the terms depart from the printed ones) is [`Benefits::first_departure`].

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Jsonb, Nullable, SmallInt, Text};
use shikaku_domain::benefit::{Benefits, LimitCategory};
use shikaku_domain::certificate::{EndReason, PrintedItems};
use shikaku_domain::copay::{CopayRate, Scheme};

use crate::benefits::{parse_json, BENEFITS_JSON};
use crate::error::DbError;

#[derive(QueryableByName)]
struct Current {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Date)]
    valid_from: NaiveDate,
    #[diesel(sql_type = Date)]
    valid_until: NaiveDate,
    #[diesel(sql_type = Jsonb)]
    printed: serde_json::Value,
    #[diesel(sql_type = Date)]
    birth_date: NaiveDate,
    #[diesel(sql_type = Text)]
    insurer_number: String,
    #[diesel(sql_type = Nullable<SmallInt>)]
    copay_rate: Option<i16>,
    #[diesel(sql_type = Jsonb)]
    benefits: serde_json::Value,
}

/// What to do with one certificate.
enum Cut {
    Shorten(i64, NaiveDate, NaiveDate),
    Void(i64, NaiveDate),
}

fn judge(c: &Current, today: NaiveDate) -> Result<Option<Cut>, DbError> {
    let printed: PrintedItems = serde_json::from_value(c.printed.clone())
        .map_err(|e| DbError::Invalid(format!("unexpected printed items of {}: {e}", c.id)))?;
    // A certificate whose printed terms cannot be read back is left as it is.
    let Ok(rate) = CopayRate::from_percent(printed.copay_percent) else {
        return Ok(None);
    };
    let Ok(limit) = printed
        .limit_category
        .as_deref()
        .map(LimitCategory::parse)
        .transpose()
    else {
        return Ok(None);
    };
    let records = parse_json(&c.benefits)?;
    let benefits = Benefits {
        records: &records,
        scheme: Scheme::of_number(&c.insurer_number),
        birth: c.birth_date,
        registered: c.copay_rate.and_then(|r| u8::try_from(r).ok()),
    };
    let Some(day) = benefits.first_departure((rate, limit), c.valid_from, c.valid_until) else {
        return Ok(None);
    };
    Ok(Some(if day > c.valid_from {
        Cut::Shorten(c.id, day.pred_opt().unwrap_or(day), day)
    } else if c.status == "pending" {
        Cut::Void(c.id, day)
    } else {
        // In force already with terms that were never right: it ends yesterday (or today,
        // when it began today), and the monthly run issues one that shows the right terms.
        let until = today.pred_opt().unwrap_or(today).max(c.valid_from);
        if until >= c.valid_until {
            return Ok(None);
        }
        Cut::Shorten(c.id, until, day)
    }))
}

/// Ends, or voids, the current certificates of `persons` whose printed co-pay rate or limit
/// category a benefit record now contradicts within their validity. Returns their ids.
pub fn cut_for_benefits(
    conn: &mut PgConnection,
    persons: &[i64],
    actor: &str,
    reason: &str,
    today: NaiveDate,
) -> Result<Vec<i64>, DbError> {
    if persons.is_empty() {
        return Ok(Vec::new());
    }
    let current: Vec<Current> = diesel::sql_query(format!(
        "SELECT c.id, c.status, c.valid_from, c.valid_until, c.printed, p.birth_date,
                p.insurer_number, p.copay_rate, {BENEFITS_JSON} AS benefits
           FROM certificates c JOIN persons p ON p.id = c.person_id
          WHERE c.person_id = ANY($1) AND c.status IN ('active', 'pending')
          ORDER BY c.id"
    ))
    .bind::<Array<BigInt>, _>(persons)
    .load(conn)?;
    let mut short: (Vec<i64>, Vec<NaiveDate>, Vec<NaiveDate>) = Default::default();
    let mut void: (Vec<i64>, Vec<NaiveDate>) = Default::default();
    for c in &current {
        match judge(c, today)? {
            Some(Cut::Shorten(id, until, day)) => {
                short.0.push(id);
                short.1.push(until);
                short.2.push(day);
            }
            Some(Cut::Void(id, day)) => {
                void.0.push(id);
                void.1.push(day);
            }
            None => {}
        }
    }
    if !short.0.is_empty() {
        diesel::sql_query(
            "WITH s AS (
                UPDATE certificates c SET valid_until = t.until, valid_until_reason = $4,
                       updated_at = now()
                  FROM unnest($1::bigint[], $2::date[], $3::date[]) AS t(id, until, day)
                 WHERE c.id = t.id RETURNING c.id, t.until, t.day)
             INSERT INTO certificate_events (certificate_id, action, reason, actor, details)
             SELECT id, 'shortened',
                    format('一部負担金割合または限度額適用区分が %s から変わるため %s までに短縮: %s',
                           day, until, $5::text),
                    $6, jsonb_build_object('valid_until', until, 'change_on', day)
               FROM s",
        )
        .bind::<Array<BigInt>, _>(&short.0)
        .bind::<Array<Date>, _>(&short.1)
        .bind::<Array<Date>, _>(&short.2)
        .bind::<Text, _>(EndReason::BenefitChange.code())
        .bind::<Text, _>(reason)
        .bind::<Text, _>(actor)
        .execute(conn)?;
    }
    if !void.0.is_empty() {
        diesel::sql_query(
            "WITH v AS (
                UPDATE certificates c SET status = 'revoked', updated_at = now()
                  FROM unnest($1::bigint[], $2::date[]) AS t(id, day)
                 WHERE c.id = t.id RETURNING c.id, t.day)
             INSERT INTO certificate_events (certificate_id, action, reason, actor, details)
             SELECT id, 'revoked',
                    format('有効開始日 %s の一部負担金割合または限度額適用区分が変わったため無効: %s',
                           day, $3::text),
                    $4, jsonb_build_object('change_on', day)
               FROM v",
        )
        .bind::<Array<BigInt>, _>(&void.0)
        .bind::<Array<Date>, _>(&void.1)
        .bind::<Text, _>(reason)
        .bind::<Text, _>(actor)
        .execute(conn)?;
    }
    Ok(short.0.into_iter().chain(void.0).collect())
}
