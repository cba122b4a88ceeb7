DROP TABLE resident_records;
DROP TABLE resident_snapshots;
DROP TABLE linkage_events;
DROP TABLE linkages;
DROP TABLE person_changes;
DROP TABLE qualifications;
DROP TABLE persons;
DROP TABLE insurers;
DROP TABLE imports;
-- btree_gist stays: other schemas in the same database may use it, and dropping an extension
-- is not this migration's business.
