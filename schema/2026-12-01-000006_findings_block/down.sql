DROP INDEX findings_blocking;
-- Drops the partial index and the CHECK constraint with it.
ALTER TABLE linkages DROP COLUMN suspended_by_finding;
