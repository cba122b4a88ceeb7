DROP TABLE index_state;
ALTER TABLE resident_snapshots DROP COLUMN index_key_id;
ALTER TABLE linkages DROP COLUMN mn_index_key_id;
ALTER TABLE linkages DROP COLUMN mn_bound;
