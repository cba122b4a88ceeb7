-- The reviewers' queue at scale (docs/audit.md "The review queue"): keyset paging in five
-- orders, exact counts per filter, assignment, bulk decisions with undo, and dismissals that
-- re-open when what they judged changes or when their date passes.

-- The person's insurer, copied from persons when the finding is first stored (a person's key
-- never changes), so the queue can filter and page by insurer without a join.
ALTER TABLE findings ADD COLUMN insurer_number text;
UPDATE findings f SET insurer_number = p.insurer_number FROM persons p WHERE p.id = f.person_id;
ALTER TABLE findings ALTER COLUMN insurer_number SET NOT NULL;

-- The reviewer the finding is assigned to (a token name or console user), if any.
ALTER TABLE findings ADD COLUMN assignee text;

-- What the finding judged, as the run that last saw it compared it (the five items' values on
-- both sides, or the other persons sharing the number), and the same at the time it was
-- dismissed: a dismissal holds until these differ. NULL before this migration; the first run
-- after it adopts what it sees for dismissals made earlier.
ALTER TABLE findings ADD COLUMN basis jsonb;
ALTER TABLE findings ADD COLUMN dismissed_basis jsonb;
-- A dismissal may also hold only until a date the reviewer set; the first run after that day
-- (Tokyo) re-opens the finding.
ALTER TABLE findings ADD COLUMN dismissed_until date;
ALTER TABLE findings ADD CONSTRAINT findings_until_only_dismissed
    CHECK (dismissed_until IS NULL OR status = 'dismissed');

-- The sort keys of the queue's orders, as stored columns so that each order is one ascending
-- (key, id) index that keyset paging walks. Most severe first; most likely another person's
-- first, per mille, findings without a probability last. The nightly rewrite of a finding
-- changes these only when the severity or the per-mille probability changes, so it stays a
-- HOT update for nearly every row (an index on p_other_person itself would not).
ALTER TABLE findings ADD COLUMN severity_rank smallint GENERATED ALWAYS AS (
    CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END
) STORED;
ALTER TABLE findings ADD COLUMN probability_rank smallint GENERATED ALWAYS AS (
    CASE WHEN p_other_person IS NULL THEN 1001
         ELSE 1000 - round(p_other_person * 1000)::smallint END
) STORED;

-- One index per order, led by the status: a page reads one index range per status it shows
-- (several are merged), so no order ever sorts the whole queue. Each carries the filter
-- columns, so a walk checks the filter in the index (an index-only scan) instead of reading
-- every finding it passes; the audit run's column is left out on purpose, since every run
-- rewrites it and an index on it would make the nightly rewrite of every finding non-HOT.
DROP INDEX findings_queue;
CREATE INDEX findings_by_severity ON findings (status, severity_rank, id)
    INCLUDE (kind, insurer_number, assignee);
CREATE INDEX findings_by_first_seen ON findings (status, first_seen, id)
    INCLUDE (kind, severity, insurer_number, assignee);
CREATE INDEX findings_by_kind ON findings (status, kind, id)
    INCLUDE (severity, insurer_number, assignee);
CREATE INDEX findings_by_insurer ON findings (status, insurer_number, id)
    INCLUDE (kind, severity, assignee);
CREATE INDEX findings_by_probability ON findings (status, probability_rank, id)
    INCLUDE (kind, severity, insurer_number, assignee);
-- Every filter of the queue with the sort keys: a filter with few matches gathers them from
-- here, index-only, and sorts them, instead of walking an order's index past rows that do not
-- match (db::findings::queue).
CREATE INDEX findings_filter ON findings (status, kind, severity, insurer_number, assignee)
    INCLUDE (severity_rank, first_seen, probability_rank, id);
-- "My queue": a reviewer's findings are few.
CREATE INDEX findings_assigned ON findings (assignee, status, severity_rank, id)
    WHERE assignee IS NOT NULL;

-- Exact counts per filter without counting a million rows: the number of findings per
-- combination of the queue's filter columns, kept by statement-level triggers in the same
-- transaction as every change (so a count read in the page's snapshot is exact). A nightly
-- rewrite that changes none of these columns changes no row here.
CREATE TABLE finding_counts (
    status          text NOT NULL,
    severity        text NOT NULL,
    kind            text NOT NULL,
    insurer_number  text NOT NULL,
    assignee        text NOT NULL DEFAULT '',
    -- No CHECK (n >= 0): an upsert checks the row it proposes to insert, and a negative
    -- delta for an existing combination is proposed before the conflict turns it into an
    -- update. The tests compare the counts with the findings after every kind of change.
    n               bigint NOT NULL,
    PRIMARY KEY (status, severity, kind, insurer_number, assignee)
);

-- SECURITY DEFINER: the function runs as the schema's owner, so the application role can read
-- the counts but never write them (docs/safeguards.md).
CREATE FUNCTION finding_counts_apply() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO finding_counts AS c (status, severity, kind, insurer_number, assignee, n)
        SELECT status, severity, kind, insurer_number, coalesce(assignee, ''), count(*)
          FROM new_rows GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT (status, severity, kind, insurer_number, assignee)
        DO UPDATE SET n = c.n + excluded.n;
    ELSE
        INSERT INTO finding_counts AS c (status, severity, kind, insurer_number, assignee, n)
        SELECT status, severity, kind, insurer_number, assignee, sum(d)
          FROM (SELECT status, severity, kind, insurer_number, coalesce(assignee, '') AS assignee,
                       1 AS d FROM new_rows
                UNION ALL
                SELECT status, severity, kind, insurer_number, coalesce(assignee, ''), -1
                  FROM old_rows) delta
         GROUP BY 1, 2, 3, 4, 5
        HAVING sum(d) <> 0
        ON CONFLICT (status, severity, kind, insurer_number, assignee)
        DO UPDATE SET n = c.n + excluded.n;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER finding_counts_insert AFTER INSERT ON findings
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION finding_counts_apply();
CREATE TRIGGER finding_counts_update AFTER UPDATE ON findings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION finding_counts_apply();
-- Findings are never deleted (the application has no DELETE and runs are history).

INSERT INTO finding_counts (status, severity, kind, insurer_number, assignee, n)
SELECT status, severity, kind, insurer_number, '', count(*) FROM findings GROUP BY 1, 2, 3, 4;

-- A bulk action: one reviewer's decision (confirm, dismiss) or assignment over many findings,
-- with the shared reason, the selection it was made on, and its undo.
CREATE TABLE finding_bulk_actions (
    id          bigserial PRIMARY KEY,
    action      text NOT NULL CHECK (action IN ('confirmed', 'dismissed', 'assigned')),
    reason      text,
    actor       text NOT NULL,
    selection   jsonb NOT NULL,
    findings    bigint NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    undone_at   timestamptz,
    undone_by   text,
    CHECK (action = 'assigned' OR reason IS NOT NULL),
    CHECK ((undone_at IS NULL) = (undone_by IS NULL))
);

-- What each finding was before a bulk action changed it, so the action can be undone exactly.
CREATE TABLE finding_bulk_items (
    bulk_id          bigint NOT NULL REFERENCES finding_bulk_actions (id),
    finding_id       bigint NOT NULL REFERENCES findings (id),
    status           text NOT NULL,
    review_reason    text,
    reviewed_by      text,
    reviewed_at      timestamptz,
    assignee         text,
    dismissed_basis  jsonb,
    dismissed_until  date,
    PRIMARY KEY (bulk_id, finding_id)
);
CREATE INDEX finding_bulk_items_finding ON finding_bulk_items (finding_id);

-- The history names the assignments, the bulk action a decision belongs to, and undos.
ALTER TABLE finding_events DROP CONSTRAINT finding_events_action_check;
ALTER TABLE finding_events ADD CONSTRAINT finding_events_action_check
    CHECK (action IN ('detected', 'confirmed', 'dismissed', 'reopened', 'resolved', 'assigned',
                      'unassigned', 'undone'));
ALTER TABLE finding_events ADD COLUMN bulk_id bigint REFERENCES finding_bulk_actions (id);
ALTER TABLE finding_events ADD COLUMN assignee text;
-- The review report counts decisions by date.
CREATE INDEX finding_events_at ON finding_events (at) WHERE action IN ('confirmed', 'dismissed');
