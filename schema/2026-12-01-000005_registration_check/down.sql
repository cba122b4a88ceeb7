ALTER TABLE imports DROP COLUMN rows_rejected;
