-- What each finding's audit run actually compared, so a reviewer sees the run's verdicts rather
-- than a recomputation under other settings: per finding, the five items with both values,
-- both comparison keys and the verdict (identity and address mismatches only); per run, the
-- kanji variant table it compared names with (sources, size, SHA-256).
ALTER TABLE findings ADD COLUMN comparison jsonb;
ALTER TABLE audit_runs ADD COLUMN variant_table jsonb;
