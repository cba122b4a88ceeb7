-- The registration-time check (issue 13): every new or corrected linkage is compared with the
-- latest register snapshot on the five items, and an import refuses the rows that disagree
-- while applying the rest. The journal keeps how many rows it refused, next to what it
-- inserted, updated and left alone, so an import's history says that something was held back
-- (the rows themselves are in the import's report, never stored: they were refused).
--
-- A constant default fills the existing rows without rewriting the table (PostgreSQL 11+
-- stores it in the catalog), so the migration is instant whatever the journal's size.
ALTER TABLE imports ADD COLUMN rows_rejected bigint NOT NULL DEFAULT 0;
