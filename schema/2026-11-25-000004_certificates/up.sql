-- 資格確認書 (qualification certificates): what was issued to whom, valid when, printed with
-- what, and every change with its reason, actor and time.

-- Certificate numbers: one sequence for the whole registry, so a number is unique per insurer
-- (and across insurers) without a counter row to lock per insurer.
CREATE SEQUENCE certificate_number_seq;

CREATE TABLE certificates (
    id              bigserial PRIMARY KEY,
    insurer_number  text COLLATE "C" NOT NULL REFERENCES insurers (insurer_number),
    number          text COLLATE "C" NOT NULL CHECK (number ~ '^[0-9]{10}$'),
    person_id       bigint NOT NULL REFERENCES persons (id),
    -- application: 申請による交付; ex_officio: 職権交付; koki_automatic: 後期高齢者 until 2026-07-31.
    kind            text NOT NULL CHECK (kind IN ('application', 'ex_officio', 'koki_automatic')),
    issued_on       date NOT NULL,
    valid_from      date NOT NULL,
    valid_until     date NOT NULL,
    -- Which rule set valid_until (policy, seventy_five, seventy, qualification_lost, ...).
    valid_until_reason text NOT NULL,
    -- The printed items exactly as printed: a later change to the person does not alter them.
    printed         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'superseded', 'revoked', 'returned', 'expired')),
    supersedes      bigint REFERENCES certificates (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_until >= valid_from),
    CONSTRAINT certificates_insurer_number UNIQUE (insurer_number, number)
);
-- A person holds at most one active certificate; reissue supersedes the old one first.
CREATE UNIQUE INDEX certificates_one_active ON certificates (person_id) WHERE status = 'active';
CREATE INDEX certificates_person ON certificates (person_id, id);
CREATE INDEX certificates_expiring ON certificates (valid_until) WHERE status = 'active';

CREATE TABLE certificate_events (
    id              bigserial PRIMARY KEY,
    certificate_id  bigint NOT NULL REFERENCES certificates (id),
    action          text NOT NULL CHECK (action IN ('issued', 'reissued', 'superseded', 'revoked',
                                                    'returned', 'expired')),
    reason          text,
    actor           text NOT NULL,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    details         jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX certificate_events_certificate ON certificate_events (certificate_id, at);

-- A lost qualification voids the certificate issued for it, whoever records the loss (an
-- import, the API, psql): the active certificate issued for a period that now has a loss date
-- before the certificate's end is revoked, with the reason recorded. Statement-level
-- with a transition table, so a million-row import pays one join, not a trigger per row.
CREATE FUNCTION certificates_revoke_on_loss() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH voided AS (
        UPDATE certificates c
           SET status = 'revoked', updated_at = now()
          FROM changed q
         WHERE c.status = 'active'
           AND c.person_id = q.person_id
           AND q.lost_on IS NOT NULL
           -- The period the certificate was issued for (its 資格取得日 is printed on it),
           -- lost before the certificate ends: also when the loss is reported late, dated
           -- before the certificate was even issued.
           AND q.acquired_on = (c.printed ->> 'acquired_on')::date
           AND q.lost_on <= c.valid_until
        RETURNING c.id, q.lost_on, q.loss_reason
    )
    INSERT INTO certificate_events (certificate_id, action, reason, actor, details)
    SELECT id, 'revoked',
           format('qualification lost on %s (資格喪失): the certificate is void and must be returned',
                  lost_on),
           'system:qualification_lost',
           jsonb_build_object('lost_on', lost_on, 'loss_reason', loss_reason)
      FROM voided;
    RETURN NULL;
END
$$;

CREATE TRIGGER certificates_revoke_on_loss_insert
    AFTER INSERT ON qualifications REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION certificates_revoke_on_loss();
CREATE TRIGGER certificates_revoke_on_loss_update
    AFTER UPDATE ON qualifications REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION certificates_revoke_on_loss();
