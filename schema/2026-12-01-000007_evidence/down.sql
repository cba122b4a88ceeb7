ALTER TABLE findings DROP CONSTRAINT findings_evidence_with_p;
ALTER TABLE findings DROP COLUMN evidence;
ALTER TABLE findings DROP COLUMN p_other_person;
ALTER TABLE audit_runs DROP COLUMN model;
