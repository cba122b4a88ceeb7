-- The audit's evidence model (docs/audit.md "Evidence"): per run, the parameters it fitted
-- (or the defaults it fell back to); per identity or address finding, the probability that the
-- number is another person's and each item's weight of evidence (the console's waterfall).
--
-- No index on p_other_person yet: every run rewrites it with the finding, and at 225,000
-- findings an index cost the nightly write more than the queue's sort by probability (a
-- top-N sort over the findings) costs the console.
ALTER TABLE audit_runs ADD COLUMN model jsonb;
ALTER TABLE findings ADD COLUMN p_other_person double precision
    CHECK (p_other_person >= 0 AND p_other_person <= 1);
ALTER TABLE findings ADD COLUMN evidence jsonb;
ALTER TABLE findings ADD CONSTRAINT findings_evidence_with_p
    CHECK ((evidence IS NULL) = (p_other_person IS NULL));
