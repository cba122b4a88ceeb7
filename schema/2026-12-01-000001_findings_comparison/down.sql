ALTER TABLE audit_runs DROP COLUMN variant_table;
ALTER TABLE findings DROP COLUMN comparison;
