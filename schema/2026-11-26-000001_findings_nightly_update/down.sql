DROP TRIGGER audit_runs_keep ON audit_runs;
DROP FUNCTION audit_runs_keep();
ALTER TABLE findings ADD CONSTRAINT findings_last_seen_run_fkey
    FOREIGN KEY (last_seen_run) REFERENCES audit_runs (id);
ALTER TABLE findings RESET (fillfactor);
