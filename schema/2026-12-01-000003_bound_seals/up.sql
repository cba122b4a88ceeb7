-- Sealed numbers bound to their rows, and index keys that can rotate.
--
-- mn_bound: the ciphertext was sealed with the row's blind index in its associated data, so a
-- ciphertext copied into another row fails to decrypt. Rows sealed before are false until
-- `shikaku keys reseal` re-seals them (it needs the key file, which the database never holds).
--
-- mn_index_key_id / index_key_id: which index key computed a blind index. `shikaku keys
-- rotate-index` recomputes every linkage's index under a new key; a register snapshot keeps the
-- key it was imported under, and the audit compares only like with like.
--
-- The defaults fill the existing rows and are then dropped: every new row must say how it was
-- sealed and indexed.
ALTER TABLE linkages ADD COLUMN mn_bound boolean NOT NULL DEFAULT false;
ALTER TABLE linkages ALTER COLUMN mn_bound DROP DEFAULT;
ALTER TABLE linkages ADD COLUMN mn_index_key_id integer NOT NULL DEFAULT 1;
ALTER TABLE linkages ALTER COLUMN mn_index_key_id DROP DEFAULT;
ALTER TABLE resident_snapshots ADD COLUMN index_key_id integer NOT NULL DEFAULT 1;
ALTER TABLE resident_snapshots ALTER COLUMN index_key_id DROP DEFAULT;

-- Which index key every linkage's blind index is under: the one row says the key the last
-- completed `keys rotate-index` left them all under (NULL while one runs). Imports and the
-- audit compare it with the key file and the register snapshot instead of scanning linkages.
CREATE TABLE index_state (
    id            smallint PRIMARY KEY CHECK (id = 1),
    index_key_id  integer
);
INSERT INTO index_state VALUES (1, 1);
