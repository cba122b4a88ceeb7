//! Re-sealing stored My Numbers after a key rotation.
//!
//! `shikaku keys rotate` first writes the key file with the new key added (old keys stay, so
//! every row remains readable throughout), then calls [`reseal`], which moves rows to the
//! current key in committed batches. An interrupted run is finished by running it again.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bytea, Integer};
use shikaku_domain::{Keyring, SealedNumber};

use crate::error::DbError;
use crate::schema::linkages;

/// Rows re-sealed per transaction: bounded memory, and progress survives an interruption.
const BATCH: i64 = 10_000;

/// Re-seals every linkage not sealed with the keyring's current key. Returns the rows moved.
pub fn reseal(conn: &mut PgConnection, keyring: &Keyring) -> Result<u64, DbError> {
    let current = i32::try_from(keyring.current_key_id())
        .map_err(|_| DbError::NotFound("key id out of range".to_string()))?;
    let mut moved = 0u64;
    let mut after = 0i64;
    loop {
        let batch = conn.transaction::<_, DbError, _>(|conn| {
            let rows: Vec<(i64, i32, Vec<u8>)> = linkages::table
                .filter(linkages::mn_key_id.ne(current))
                .filter(linkages::id.gt(after))
                .order(linkages::id)
                .limit(BATCH)
                .select((linkages::id, linkages::mn_key_id, linkages::mn_sealed))
                .for_update()
                .load(conn)?;
            let mut ids = Vec::with_capacity(rows.len());
            let mut sealed_values = Vec::with_capacity(rows.len());
            for (id, key_id, ciphertext) in &rows {
                let digits = keyring.open(&SealedNumber {
                    key_id: u32::try_from(*key_id).unwrap_or(u32::MAX),
                    ciphertext: ciphertext.clone(),
                })?;
                ids.push(*id);
                sealed_values.push(keyring.seal(&digits).ciphertext);
            }
            // One statement per batch, not per row.
            diesel::sql_query(
                "UPDATE linkages l SET mn_sealed = v.sealed, mn_key_id = $3, updated_at = now()
                 FROM unnest($1::bigint[], $2::bytea[]) AS v(id, sealed)
                 WHERE l.id = v.id",
            )
            .bind::<Array<BigInt>, _>(&ids)
            .bind::<Array<Bytea>, _>(&sealed_values)
            .bind::<Integer, _>(current)
            .execute(conn)?;
            Ok(rows.last().map(|(id, _, _)| (*id, rows.len())))
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
