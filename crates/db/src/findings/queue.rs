//! The review queue at scale: filters, five orders, keyset paging and exact counts.
//!
//! A page is read by walking one `(status, key, id)` index per status the filter shows and
//! merging them (`UNION ALL` of index ranges, then the first `limit`), from just after the
//! cursor: no order ever sorts the whole queue, and a page costs the same at the millionth row
//! as at the first. Paging by key rather than offset keeps pages stable while other reviewers
//! decide findings: a decided finding drops out of an `open` queue without shifting the ones
//! after it, so nothing is skipped or shown twice.
//!
//! The total is read from `finding_counts`, which triggers keep exact in the transaction of
//! every change, in the same repeatable-read snapshot as the page. (A filter on the audit run
//! is not among its columns: that total is counted from the findings.)

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use shikaku_domain::finding::{FindingKind, FindingStatus, Severity};

use super::{typed, StoredFinding, SELECT};
use crate::error::DbError;

/// How the review queue is sorted. Ties are broken by id (oldest first).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    strum::EnumString,
    strum::Display,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum QueueOrder {
    /// Most severe first.
    #[default]
    Severity,
    /// First detected first.
    FirstSeen,
    /// By kind (formats.md name).
    Kind,
    /// By 保険者番号.
    Insurer,
    /// Highest probability of another person first, per mille (findings without one last).
    Probability,
}

impl QueueOrder {
    /// Every order.
    pub const ALL: &'static [QueueOrder] = <Self as strum::VariantArray>::VARIANTS;

    /// `severity`, `first_seen`, `kind`, `insurer` or `probability`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The order as the console names it.
    pub fn label(self) -> &'static str {
        match self {
            QueueOrder::Severity => "重大度",
            QueueOrder::FirstSeen => "初回検出",
            QueueOrder::Kind => "種別",
            QueueOrder::Insurer => "保険者",
            QueueOrder::Probability => "他人の可能性",
        }
    }

    /// The sort key as SQL over `findings f`, its value as text (the cursor's form), and the
    /// cursor's text cast back for the keyset comparison with `$k`.
    pub(super) fn key(self) -> (&'static str, &'static str, &'static str) {
        match self {
            QueueOrder::Severity => ("f.severity_rank", "f.severity_rank::text", "$7::smallint"),
            QueueOrder::FirstSeen => (
                "f.first_seen",
                "(extract(epoch FROM f.first_seen) * 1000000)::bigint::text",
                "(timestamptz 'epoch' + $7::bigint * interval '1 microsecond')",
            ),
            QueueOrder::Kind => ("f.kind", "f.kind", "$7::text"),
            QueueOrder::Insurer => ("f.insurer_number", "f.insurer_number", "$7::text"),
            QueueOrder::Probability => (
                "f.probability_rank",
                "f.probability_rank::text",
                "$7::smallint",
            ),
        }
    }

    /// Whether `key` is a value this order's cursor can hold.
    fn valid_key(self, key: &str) -> bool {
        let digits = !key.is_empty() && key.len() <= 18 && key.bytes().all(|b| b.is_ascii_digit());
        match self {
            QueueOrder::Severity | QueueOrder::Probability => digits && key.len() <= 4,
            // Microseconds since 1970: 16 digits reach the 2280s, and more would overflow the
            // timestamp the cursor is cast back to.
            QueueOrder::FirstSeen => digits && key.len() <= 16,
            QueueOrder::Kind => FindingKind::parse(key).is_some(),
            QueueOrder::Insurer => insurer_shaped(key),
        }
    }
}

/// Whose findings: a reviewer's, or nobody's yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    /// Not assigned to anyone.
    Nobody,
    /// Assigned to this reviewer (a token name or console user).
    Reviewer(String),
}

impl Assignee {
    /// The stored form for the filter: `''` for nobody (as `finding_counts` keeps it).
    pub(super) fn sql(&self) -> &str {
        match self {
            Assignee::Nobody => "",
            Assignee::Reviewer(name) => name,
        }
    }
}

/// Which findings; `None` means any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Only this status.
    pub status: Option<FindingStatus>,
    /// Only this kind.
    pub kind: Option<FindingKind>,
    /// Only this severity.
    pub severity: Option<Severity>,
    /// Only persons of this 保険者番号.
    pub insurer: Option<String>,
    /// Only findings assigned to this reviewer, or to nobody.
    pub assignee: Option<Assignee>,
    /// Only findings last seen by this audit run.
    pub run_id: Option<i64>,
}

/// The conditions of a [`Filter`] over `findings f`, parameters `$1`–`$5` and `$6` (ids), as
/// [`bind_filter`] binds them. The status is not among them: a page walks each status's index
/// range separately, and a selection states it itself.
pub(super) const FILTER_SQL: &str = "($1::text IS NULL OR f.kind = $1)
       AND ($2::text IS NULL OR f.severity = $2)
       AND ($3::text IS NULL OR f.insurer_number = $3)
       AND ($4::text IS NULL OR ($4 = '' AND f.assignee IS NULL) OR f.assignee = $4)
       AND ($5::bigint IS NULL OR f.last_seen_run = $5)
       AND ($6::bigint[] IS NULL OR f.id = ANY($6))";

/// Binds `$1`–`$6` of [`FILTER_SQL`].
macro_rules! bind_filter {
    ($query:expr, $filter:expr, $ids:expr) => {{
        use diesel::sql_types::{Array, BigInt, Nullable, Text};
        use shikaku_domain::finding::{FindingKind, Severity};
        $query
            .bind::<Nullable<Text>, _>($filter.kind.map(FindingKind::as_str))
            .bind::<Nullable<Text>, _>($filter.severity.map(Severity::as_str))
            .bind::<Nullable<Text>, _>($filter.insurer.clone())
            .bind::<Nullable<Text>, _>($filter.assignee.as_ref().map(|a| a.sql().to_owned()))
            .bind::<Nullable<BigInt>, _>($filter.run_id)
            .bind::<Nullable<Array<BigInt>>, _>($ids)
    }};
}
pub(super) use bind_filter;

/// A [`Filter`] over `finding_counts c` (status included), parameters `$1`–`$5` as
/// [`bind_counts`] binds them: the totals and the ranges a walk reads use the same conditions.
const COUNTS_SQL: &str = "($1::text IS NULL OR c.status = $1)
       AND ($2::text IS NULL OR c.kind = $2) AND ($3::text IS NULL OR c.severity = $3)
       AND ($4::text IS NULL OR c.insurer_number = $4)
       AND ($5::text IS NULL OR c.assignee = $5)";

/// Binds `$1`–`$5` of [`COUNTS_SQL`].
macro_rules! bind_counts {
    ($query:expr, $filter:expr) => {
        $query
            .bind::<Nullable<Text>, _>($filter.status.map(FindingStatus::as_str))
            .bind::<Nullable<Text>, _>($filter.kind.map(FindingKind::as_str))
            .bind::<Nullable<Text>, _>($filter.severity.map(Severity::as_str))
            .bind::<Nullable<Text>, _>($filter.insurer.clone())
            .bind::<Nullable<Text>, _>($filter.assignee.as_ref().map(|a| a.sql().to_owned()))
    };
}

/// Whether `s` has the shape of a 保険者番号: 6 or 8 digits.
fn insurer_shaped(s: &str) -> bool {
    (s.len() == 6 || s.len() == 8) && s.bytes().all(|b| b.is_ascii_digit())
}

impl Filter {
    /// A filter from what a caller typed (API query or body, console form, CLI flags), each
    /// part checked: an insurer number is 6 or 8 digits, an assignee a plain name, `-` (or
    /// nothing) meaning nobody is a filter on unassigned findings (or none).
    pub fn checked(
        status: Option<FindingStatus>,
        kind: Option<FindingKind>,
        severity: Option<Severity>,
        insurer: Option<String>,
        assignee: Option<&str>,
        run_id: Option<i64>,
    ) -> Result<Filter, DbError> {
        if insurer.as_deref().is_some_and(|i| !insurer_shaped(i)) {
            return Err(DbError::Invalid(
                "insurer: a 保険者番号 is 6 or 8 digits".into(),
            ));
        }
        let assignee = match assignee {
            None | Some("") => None,
            Some("-") => Some(Assignee::Nobody),
            Some(name) => {
                shikaku_domain::free_text::FreeText::Reason
                    .check(name)
                    .map_err(|e| DbError::Invalid(format!("assignee: {e}")))?;
                Some(Assignee::Reviewer(name.to_owned()))
            }
        };
        Ok(Filter {
            status,
            kind,
            severity,
            insurer,
            assignee,
            run_id,
        })
    }

    /// The filter as recorded in the access log and with a bulk action.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "status": self.status, "kind": self.kind, "severity": self.severity,
            "insurer": self.insurer, "run": self.run_id,
            "assignee": self.assignee.as_ref().map(|a| match a {
                Assignee::Nobody => "-",
                Assignee::Reviewer(n) => n.as_str(),
            }),
        })
    }

    /// The statuses a page walks: the one asked for, or all four.
    pub(super) fn statuses(&self) -> Vec<FindingStatus> {
        match self.status {
            Some(s) => vec![s],
            None => FindingStatus::ALL.to_vec(),
        }
    }

    /// `f.status IN (...)` for the filter's statuses (literals from the enum, never input).
    pub(super) fn status_sql(&self) -> String {
        let list: Vec<String> = self
            .statuses()
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        format!("f.status IN ({})", list.join(", "))
    }
}

/// Where a page ends: the next page starts just after it. Its text form,
/// `order:key:id`, is what the API and the CLI pass back (`--after`); it holds sort keys and a
/// finding id, nothing personal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The order the cursor belongs to.
    pub order: QueueOrder,
    key: String,
    id: i64,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.order, self.key, self.id)
    }
}

impl std::str::FromStr for Cursor {
    type Err = DbError;

    fn from_str(s: &str) -> Result<Cursor, DbError> {
        let bad = || {
            DbError::Invalid(format!(
                "cursor: expected ORDER:KEY:ID as returned with the previous page, got {:?}",
                s.chars().take(60).collect::<String>()
            ))
        };
        let mut parts = s.splitn(3, ':');
        let (Some(order), Some(key), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let order: QueueOrder = order.parse().map_err(|_| bad())?;
        let id: i64 = id.parse().map_err(|_| bad())?;
        if id < 1 || !order.valid_key(key) {
            return Err(bad());
        }
        Ok(Cursor {
            order,
            key: key.to_owned(),
            id,
        })
    }
}

/// One page of the queue.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page {
    /// The findings, in the requested order.
    pub findings: Vec<StoredFinding>,
    /// How many findings the filter matches in all (exact, in the page's snapshot).
    pub total: i64,
    /// The cursor of the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A page of the queue: at most `limit` findings matching `filter` in `order`, starting just
/// after `after`, with the filter's exact total (module docs).
pub fn page(
    conn: &mut PgConnection,
    filter: &Filter,
    order: QueueOrder,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Page, DbError> {
    page_with(conn, filter, order, after, limit, Read::Best)
}

/// How [`page_with`] reads a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// As the totals suggest ([`GATHER_AT_MOST`]): what [`page`] does.
    Best,
    /// Gather every match, then sort.
    Gather,
    /// Walk the order's index.
    Walk,
}

/// [`page`], read the way `read` says: a parameter so that tests read the same pages both
/// ways on small data.
pub fn page_with(
    conn: &mut PgConnection,
    filter: &Filter,
    order: QueueOrder,
    after: Option<&Cursor>,
    limit: i64,
    read: Read,
) -> Result<Page, DbError> {
    if let Some(c) = after {
        if c.order != order {
            return Err(DbError::Invalid(format!(
                "cursor: it belongs to sort {}, not {order}",
                c.order
            )));
        }
    }
    let limit = limit.clamp(1, 1000);
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(|conn| {
            let total = count(conn, filter)?;
            let gather = match read {
                Read::Gather => true,
                Read::Walk => false,
                Read::Best if total > GATHER_AT_MOST => false,
                Read::Best => {
                    // How many findings a walk would pass: every finding of the statuses shown.
                    let walked = count(
                        conn,
                        &Filter {
                            status: filter.status,
                            ..Filter::default()
                        },
                    )?;
                    total.saturating_mul(GATHER_BELOW_ONE_IN) < walked
                }
            };
            let (ids, keys) = if total == 0 {
                (Vec::new(), Vec::new())
            } else if gather {
                gathered_ids(conn, filter, order, after, limit + 1)?
            } else {
                page_ids(conn, filter, order, after, limit + 1)?
            };
            let more = ids.len() > usize::try_from(limit).unwrap_or(usize::MAX);
            let shown = &ids[..ids.len().min(usize::try_from(limit).unwrap_or(usize::MAX))];
            let next_cursor = match (more, shown.last()) {
                (true, Some(&id)) => Some(
                    Cursor {
                        order,
                        key: keys[shown.len() - 1].clone(),
                        id,
                    }
                    .to_string(),
                ),
                _ => None,
            };
            let findings = by_ids(conn, shown)?;
            Ok(Page {
                findings,
                total,
                next_cursor,
            })
        })
}

/// A page gathers every match through the filter's indexes and sorts them when the matches
/// are rare (fewer than one in [`GATHER_BELOW_ONE_IN`] of the findings a walk would pass) and
/// at most this many; otherwise it walks the order's index. A walk reads about
/// `limit / density` entries, fast when matches are dense and slow when they are rare (a filter
/// matching nothing walks the whole queue); gathering costs what the matches do. The exact
/// totals, known before the page is read, decide.
const GATHER_AT_MOST: i64 = 50_000;

/// See [`GATHER_AT_MOST`]: below one match in 40 findings walked (2.5%), a page gathers.
const GATHER_BELOW_ONE_IN: i64 = 40;

#[derive(QueryableByName)]
struct Key {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    k: String,
}

/// A page of a filter with few matches: all of them (through `findings_filter` or another
/// index on the filter), then the first after the cursor in the order.
fn gathered_ids(
    conn: &mut PgConnection,
    filter: &Filter,
    order: QueueOrder,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<(Vec<i64>, Vec<String>), DbError> {
    let (column, text, cast) = order.key();
    let sql = format!(
        "WITH matches AS MATERIALIZED (
            SELECT f.id, {column} AS key FROM findings f
             WHERE {} AND {FILTER_SQL}
         ), page AS (
            SELECT id, key FROM matches
             WHERE ($7::text IS NULL OR (key, id) > ({}, $8))
             ORDER BY key, id LIMIT $9
         )
         SELECT page.id, {text} AS k FROM page JOIN findings f ON f.id = page.id
          ORDER BY page.key, page.id",
        filter.status_sql(),
        cast
    );
    let rows: Vec<Key> = bind_filter!(diesel::sql_query(sql), filter, None::<Vec<i64>>)
        .bind::<Nullable<Text>, _>(after.map(|c| c.key.clone()))
        .bind::<BigInt, _>(after.map_or(0, |c| c.id))
        .bind::<BigInt, _>(limit)
        .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.id, r.k)).unzip())
}

/// The index ranges a walk reads: one per status, or, for an order whose key is one of
/// `finding_counts`' columns (severity, kind, insurer), one per status and key value that has
/// matches, so that no walk crosses a range without any (by kind, "open and critical" would
/// otherwise read every open address mismatch before the first identity mismatch).
fn ranges(
    conn: &mut PgConnection,
    filter: &Filter,
    order: QueueOrder,
) -> Result<Vec<(FindingStatus, Option<String>)>, DbError> {
    let column = match order {
        QueueOrder::Severity => "severity",
        QueueOrder::Kind => "kind",
        QueueOrder::Insurer => "insurer_number",
        QueueOrder::FirstSeen | QueueOrder::Probability => {
            return Ok(filter.statuses().into_iter().map(|s| (s, None)).collect());
        }
    };
    #[derive(QueryableByName)]
    struct Range {
        #[diesel(sql_type = Text)]
        status: String,
        #[diesel(sql_type = Text)]
        value: String,
    }
    let found: Vec<Range> = bind_counts!(
        diesel::sql_query(format!(
            "SELECT DISTINCT c.status, c.{column} AS value FROM finding_counts c
              WHERE c.n > 0 AND {COUNTS_SQL}"
        )),
        filter
    )
    .load(conn)?;
    found
        .into_iter()
        .map(|r| {
            let status = FindingStatus::parse(&r.status).ok_or_else(|| {
                DbError::Invalid(format!("unexpected stored status {:?}", r.status))
            })?;
            Ok((status, Some(r.value)))
        })
        .collect()
}

/// The ids (and cursor keys) of a page, in order, walking the order's index ranges from the
/// cursor and merging them.
fn page_ids(
    conn: &mut PgConnection,
    filter: &Filter,
    order: QueueOrder,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<(Vec<i64>, Vec<String>), DbError> {
    let (column, text, cast) = order.key();
    let ranges = ranges(conn, filter, order)?;
    if ranges.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    // Values come from finding_counts; they are bound, never spliced. A severity is walked by
    // its rank, the index's key.
    let values: Vec<String> = ranges
        .iter()
        .map(|(_, v)| match (order, v) {
            (QueueOrder::Severity, Some(v)) => Severity::parse(v)
                .and_then(|s| Severity::MOST_SEVERE_FIRST.iter().position(|x| *x == s))
                .map(|rank| rank.to_string())
                .ok_or_else(|| DbError::Invalid(format!("unexpected stored severity {v:?}"))),
            (_, v) => Ok(v.clone().unwrap_or_default()),
        })
        .collect::<Result<_, DbError>>()?;
    let branches: Vec<String> = ranges
        .iter()
        .enumerate()
        .map(|(i, (status, value))| {
            let n = i + 1;
            // In a range of one key value the cursor is the value and an id: a range before
            // the cursor's value is skipped, the cursor's own range starts after the id, a
            // later range from its start. Each comparison is of constants, which the planner
            // folds before it plans the range's scan. (A row comparison here would start the
            // scan at the range's first entry and read the whole range before the cursor.)
            let (on_value, after_cursor) = match (order, value) {
                (QueueOrder::Severity, Some(_)) => (
                    format!("f.severity_rank = ($10[{n}])::smallint"),
                    format!(
                        "(($10[{n}])::smallint > {cast} OR (($10[{n}])::smallint = {cast} AND f.id > $8))"
                    ),
                ),
                (QueueOrder::Kind | QueueOrder::Insurer, Some(_)) => (
                    format!("{column} = $10[{n}]"),
                    format!("($10[{n}] > {cast} OR ($10[{n}] = {cast} AND f.id > $8))"),
                ),
                _ => (
                    "TRUE".to_owned(),
                    format!("({column}, f.id) > ({cast}, $8)"),
                ),
            };
            format!(
                "(SELECT f.id, {column} AS key FROM findings f
                  WHERE f.status = '{}' AND {on_value} AND {FILTER_SQL}
                    AND ($7::text IS NULL OR {after_cursor})
                  ORDER BY {column}, f.id LIMIT $9)",
                status.as_str()
            )
        })
        .collect();
    let sql = format!(
        "SELECT page.id, {text} AS k
           FROM (SELECT * FROM ({}) b ORDER BY key, id LIMIT $9) page
           JOIN findings f ON f.id = page.id
          ORDER BY page.key, page.id",
        branches.join(" UNION ALL ")
    );
    // A range of one severity, kind or insurer already holds only matches on that item: the
    // filter's own condition on it is left out, or the planner, taking the two for
    // independent, expects a handful of rows and sorts them all instead of walking the range.
    let mut within = filter.clone();
    match order {
        QueueOrder::Severity => within.severity = None,
        QueueOrder::Kind => within.kind = None,
        QueueOrder::Insurer => within.insurer = None,
        QueueOrder::FirstSeen | QueueOrder::Probability => {}
    }
    let rows: Vec<Key> = bind_filter!(diesel::sql_query(sql), within, None::<Vec<i64>>)
        .bind::<Nullable<Text>, _>(after.map(|c| c.key.clone()))
        .bind::<BigInt, _>(after.map_or(0, |c| c.id))
        .bind::<BigInt, _>(limit)
        .bind::<Array<Text>, _>(&values)
        .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.id, r.k)).unzip())
}

/// The cursor a reviewer holds after reading the first `read` findings of the queue, or `None`
/// when the queue is shorter: how the benchmark and tests start a page deep in the queue
/// without paging there. Reads with an offset, so it costs what paging there would.
pub fn cursor_at(
    conn: &mut PgConnection,
    filter: &Filter,
    order: QueueOrder,
    read: i64,
) -> Result<Option<Cursor>, DbError> {
    #[derive(QueryableByName)]
    struct Key {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Text)]
        k: String,
    }
    let (column, text, _) = order.key();
    let row: Option<Key> = bind_filter!(
        diesel::sql_query(format!(
            "SELECT f.id, {text} AS k FROM findings f
              WHERE {} AND {FILTER_SQL}
              ORDER BY {column}, f.id OFFSET $7 - 1 LIMIT 1",
            filter.status_sql()
        )),
        filter,
        None::<Vec<i64>>
    )
    .bind::<BigInt, _>(read.max(1))
    .get_result(conn)
    .optional()?;
    Ok(row.map(|r| Cursor {
        order,
        key: r.k,
        id: r.id,
    }))
}

/// The findings with these ids, in the same order.
pub(super) fn by_ids(conn: &mut PgConnection, ids: &[i64]) -> Result<Vec<StoredFinding>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    typed(
        diesel::sql_query(format!(
            "{SELECT} JOIN unnest($1::bigint[]) WITH ORDINALITY AS page(id, n) ON page.id = f.id
             ORDER BY page.n"
        ))
        .bind::<Array<BigInt>, _>(ids)
        .load(conn)?,
    )
}

/// How many findings `filter` matches: from `finding_counts` (exact, kept by triggers), or
/// counted from the findings when the filter names an audit run.
pub fn count(conn: &mut PgConnection, filter: &Filter) -> Result<i64, DbError> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let n: N = if filter.run_id.is_some() {
        bind_filter!(
            diesel::sql_query(format!(
                "SELECT count(*) AS n FROM findings f WHERE ($7::text IS NULL OR f.status = $7)
                   AND {FILTER_SQL}"
            )),
            filter,
            None::<Vec<i64>>
        )
        .bind::<Nullable<Text>, _>(filter.status.map(FindingStatus::as_str))
        .get_result(conn)?
    } else {
        bind_counts!(
            diesel::sql_query(format!(
                "SELECT coalesce(sum(n), 0)::bigint AS n FROM finding_counts c WHERE {COUNTS_SQL}"
            )),
            filter
        )
        .get_result(conn)?
    };
    Ok(n.n)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_no_page_returned() {
        for text in [
            "severity:0:12",
            "first_seen:1764547200123456:9",
            "kind:identity_mismatch:3",
            "insurer:01130012:4",
            "probability:1001:5",
        ] {
            let c: Cursor = text.parse().unwrap();
            assert_eq!(c.to_string(), text);
        }
        for bad in [
            "",
            "severity:0",
            "severity:x:1",
            "severity:0:0",
            "kind:nonsense:1",
            "first_seen:99999999999999999:1",
            "insurer:12345:1",
            "insurer:0113001a:1",
            "sideways:1:1",
            "severity:0:1'; DROP TABLE findings; --",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }
}
