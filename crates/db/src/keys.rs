//! Re-sealing and re-indexing stored My Numbers after a key changes.
//!
//! `shikaku keys rotate` first writes the key file with the new encryption key added (old keys
//! stay, so every row remains readable throughout), then calls [`reseal`], which moves rows to
//! the current key, bound to their row, in committed batches. `shikaku keys rotate-index` adds
//! an index key and calls [`reindex`], which recomputes every blind index under it. An
//! interrupted run is finished by running it again.
//!
//! Which index key the linkages are under is kept in `index_state`: imports and the audit
//! check it against the key file and the register snapshot ([`check_index`]) instead of
//! scanning every linkage.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Bytea, Integer, Nullable};
use shikaku_domain::{BlindIndex, Keyring, SealedNumber};

use crate::error::DbError;

/// Rows re-sealed per transaction: bounded memory, and progress survives an interruption.
const BATCH: i64 = 10_000;

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Bytea)]
    mn_blind: Vec<u8>,
    #[diesel(sql_type = Bytea)]
    mn_sealed: Vec<u8>,
    #[diesel(sql_type = Integer)]
    mn_key_id: i32,
    #[diesel(sql_type = Bool)]
    mn_bound: bool,
}

impl Stored {
    fn sealed(&self) -> SealedNumber {
        SealedNumber {
            key_id: u32::try_from(self.mn_key_id).unwrap_or(u32::MAX),
            ciphertext: self.mn_sealed.clone(),
            bound: self.mn_bound,
        }
    }

    fn blind(&self) -> Result<BlindIndex, DbError> {
        <[u8; 32]>::try_from(self.mn_blind.as_slice())
            .map(BlindIndex)
            .map_err(|_| DbError::Invalid(format!("linkage {} has a malformed index", self.id)))
    }
}

/// Runs `step` over the linkages `filter` selects (a condition on `l`, with `$1` the id to
/// start after), in batches each committed with the rows it rewrote.
fn rewrite(conn: &mut PgConnection, keyring: &Keyring, filter: &str) -> Result<u64, DbError> {
    let current = i32::try_from(keyring.current_key_id())
        .map_err(|_| DbError::Invalid("key id out of range".to_string()))?;
    let index_key = i32::try_from(keyring.index_key_id())
        .map_err(|_| DbError::Invalid("index key id out of range".to_string()))?;
    let mut moved = 0u64;
    let mut after = 0i64;
    loop {
        let batch = conn.transaction::<_, DbError, _>(|conn| {
            let rows: Vec<Stored> = diesel::sql_query(format!(
                "SELECT id, mn_blind, mn_sealed, mn_key_id, mn_bound FROM linkages l
                  WHERE l.id > $1 AND ({filter}) ORDER BY l.id LIMIT {BATCH} FOR UPDATE"
            ))
            .bind::<BigInt, _>(after)
            .bind::<Integer, _>(current)
            .bind::<Integer, _>(index_key)
            .load(conn)?;
            let mut ids = Vec::with_capacity(rows.len());
            let mut blinds = Vec::with_capacity(rows.len());
            let mut sealed = Vec::with_capacity(rows.len());
            for row in &rows {
                let digits = keyring.open(&row.sealed(), &row.blind()?)?;
                ids.push(row.id);
                blinds.push(keyring.blind_index(&digits).as_bytes().to_vec());
                sealed.push(keyring.seal(&digits).ciphertext);
            }
            // One statement per batch, not per row.
            diesel::sql_query(
                "UPDATE linkages l SET mn_blind = v.blind, mn_sealed = v.sealed, mn_key_id = $4,
                        mn_bound = true, mn_index_key_id = $5, updated_at = now()
                 FROM unnest($1::bigint[], $2::bytea[], $3::bytea[]) AS v(id, blind, sealed)
                 WHERE l.id = v.id",
            )
            .bind::<Array<BigInt>, _>(&ids)
            .bind::<Array<Bytea>, _>(&blinds)
            .bind::<Array<Bytea>, _>(&sealed)
            .bind::<Integer, _>(current)
            .bind::<Integer, _>(index_key)
            .execute(conn)?;
            Ok(rows.last().map(|r| (r.id, rows.len())))
        })?;
        match batch {
            Some((last, n)) => {
                after = last;
                moved += u64::try_from(n).unwrap_or(0);
            }
            None => return Ok(moved),
        }
    }
}

/// Re-seals every linkage not sealed with the keyring's current key or not yet bound to its
/// row. Returns the rows re-sealed.
pub fn reseal(conn: &mut PgConnection, keyring: &Keyring) -> Result<u64, DbError> {
    check_index(conn, keyring, None)?;
    rewrite(conn, keyring, "l.mn_key_id <> $2 OR NOT l.mn_bound")
}

/// Recomputes the blind index of every linkage not under the keyring's current index key (and
/// re-seals it bound to the new index). Imports wait meanwhile (the import lock), and the
/// registry is marked as being re-indexed until every row is done. Returns the rows moved.
pub fn reindex(conn: &mut PgConnection, keyring: &Keyring) -> Result<u64, DbError> {
    conn.batch_execute(&format!(
        "SELECT pg_advisory_lock({});",
        crate::import::IMPORT_LOCK
    ))?;
    let result = (|| {
        diesel::sql_query("UPDATE index_state SET index_key_id = NULL").execute(conn)?;
        let moved = rewrite(conn, keyring, "l.mn_index_key_id <> $3")?;
        diesel::sql_query("UPDATE index_state SET index_key_id = $1")
            .bind::<Integer, _>(i32::try_from(keyring.index_key_id()).unwrap_or(i32::MAX))
            .execute(conn)?;
        Ok(moved)
    })();
    conn.batch_execute(&format!(
        "SELECT pg_advisory_unlock({});",
        crate::import::IMPORT_LOCK
    ))?;
    result
}

#[derive(QueryableByName)]
struct IndexState {
    #[diesel(sql_type = Nullable<Integer>)]
    index_key_id: Option<i32>,
}

/// The index key every linkage is under, or `None` while `keys rotate-index` runs.
pub fn linkages_index_key(conn: &mut PgConnection) -> Result<Option<u32>, DbError> {
    let s: IndexState =
        diesel::sql_query("SELECT index_key_id FROM index_state WHERE id = 1").get_result(conn)?;
    Ok(s.index_key_id.and_then(|k| u32::try_from(k).ok()))
}

/// Refuses work that compares blind indexes when they would not be comparable: the
/// linkages must all be under the key file's current index key (else a rotation is unfinished,
/// or the key file is not the one the registry was indexed with), and a register snapshot
/// under the same key.
pub fn check_index(
    conn: &mut PgConnection,
    keyring: &Keyring,
    snapshot_index_key: Option<u32>,
) -> Result<(), DbError> {
    let current = keyring.index_key_id();
    match linkages_index_key(conn)? {
        None => {
            return Err(DbError::KeysChanged(
                "the linkages are being re-indexed: finish `shikaku keys rotate-index` first"
                    .into(),
            ))
        }
        Some(k) if k != current => {
            return Err(DbError::KeysChanged(format!(
                "the linkages are indexed under index key {k}, the key file's current one is \
                 {current}: run `shikaku keys rotate-index` (or use the right key file)"
            )))
        }
        Some(_) => {}
    }
    if let Some(s) = snapshot_index_key.filter(|s| *s != current) {
        return Err(DbError::Invalid(format!(
            "the latest register snapshot is indexed under index key {s}, the linkages under \
             {current}: import a new register extract"
        )));
    }
    Ok(())
}
