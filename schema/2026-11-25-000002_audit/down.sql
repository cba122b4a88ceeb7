DROP TABLE finding_events;
DROP TABLE findings;
DROP TABLE audit_runs;
