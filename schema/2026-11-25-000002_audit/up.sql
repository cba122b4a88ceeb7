-- Linkage audit: every run, the findings it produced, and what reviewers did with them.

-- One row per `shikaku audit run`: what it compared against, with which settings, and what
-- it found. A run that crashed stays 'running' with no finished_at, which is itself a signal.
CREATE TABLE audit_runs (
    id                 bigserial PRIMARY KEY,
    started_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at        timestamptz,
    status             text NOT NULL DEFAULT 'running'
                       CHECK (status IN ('running', 'finished', 'failed')),
    run_date           date NOT NULL,
    snapshot_id        bigint REFERENCES resident_snapshots (id),
    parameters         jsonb NOT NULL DEFAULT '{}'::jsonb,
    linkages_checked   bigint NOT NULL DEFAULT 0,
    findings_detected  bigint NOT NULL DEFAULT 0,
    findings_new       bigint NOT NULL DEFAULT 0,
    findings_resolved  bigint NOT NULL DEFAULT 0,
    counts             jsonb NOT NULL DEFAULT '{}'::jsonb,
    timings            jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- One row per problem, identified by a fingerprint that is stable across runs (kind, person
-- key, keyed hash of the number), so a re-run updates last_seen and keeps the review status.
CREATE TABLE findings (
    id              bigserial PRIMARY KEY,
    fingerprint     text COLLATE "C" NOT NULL UNIQUE,
    kind            text NOT NULL CHECK (kind IN ('invalid_check_digit', 'number_shared',
                        'multiple_numbers', 'not_in_registry', 'resident_removed',
                        'identity_mismatch', 'address_mismatch')),
    severity        text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    person_id       bigint NOT NULL REFERENCES persons (id),
    linkage_id      bigint REFERENCES linkages (id),
    mn_last4        text NOT NULL CHECK (mn_last4 ~ '^[0-9]{4}$'),
    fields          text NOT NULL DEFAULT '',
    detail          text NOT NULL,
    status          text NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'confirmed', 'dismissed', 'resolved')),
    first_seen_run  bigint NOT NULL REFERENCES audit_runs (id),
    last_seen_run   bigint NOT NULL REFERENCES audit_runs (id),
    first_seen      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL,
    resolved_run    bigint REFERENCES audit_runs (id),
    review_reason   text,
    reviewed_by     text,
    reviewed_at     timestamptz,
    -- 理由付き疑いなし: a dismissal always carries its reason.
    CHECK (status <> 'dismissed' OR review_reason IS NOT NULL)
);
CREATE INDEX findings_queue ON findings (status, severity, kind);
CREATE INDEX findings_person ON findings (person_id);

-- Every review action and automatic resolution, with who and why.
CREATE TABLE finding_events (
    id          bigserial PRIMARY KEY,
    finding_id  bigint NOT NULL REFERENCES findings (id) ON DELETE CASCADE,
    action      text NOT NULL CHECK (action IN ('detected', 'confirmed', 'dismissed', 'reopened',
                                                'resolved')),
    reason      text,
    actor       text NOT NULL,
    run_id      bigint REFERENCES audit_runs (id),
    at          timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX finding_events_finding ON finding_events (finding_id, at);
