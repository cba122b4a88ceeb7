-- Critical findings block online viewing of their linkage (issue 13). The audit run that
-- records a critical finding suspends the linkage and names the finding here, in the run's
-- transaction; dismissing the finding (理由付き疑いなし), its resolution, confirming the
-- identity or correcting the number lifts the block (docs/audit.md, "Blocking"). A suspension
-- by a reviewer leaves this NULL, and the audit never lifts it.
--
-- Only a suspended linkage names a finding: whatever makes a linkage active or revoked clears
-- the column in the same statement, so a stale block cannot outlive its status.
--
-- No foreign key to findings: findings are never deleted (the application role has no DELETE,
-- and runs are history), and a second foreign key between linkages and findings, the other way
-- round from findings.linkage_id, would make `diesel print-schema` drop the join it generates
-- between the two tables.
ALTER TABLE linkages ADD COLUMN suspended_by_finding bigint;
ALTER TABLE linkages ADD CONSTRAINT linkages_blocked_only_when_suspended
    CHECK (suspended_by_finding IS NULL OR status = 'suspended');
-- The linkages a finding blocks: few, looked up after every run and every review.
CREATE INDEX linkages_blocked ON linkages (suspended_by_finding)
    WHERE suspended_by_finding IS NOT NULL;
-- The findings that block (or would block) a linkage: few, looked up by linkage after every run
-- and every review. The nightly rewrite of findings leaves severity and status as they were for
-- nearly every row, so it stays a HOT update.
CREATE INDEX findings_blocking ON findings (linkage_id)
    WHERE severity = 'critical' AND status IN ('open', 'confirmed');
