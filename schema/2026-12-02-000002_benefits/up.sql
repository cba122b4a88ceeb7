-- Dated benefits (issue 14): the co-pay rate in force from one day to another (高齢受給者証),
-- the 限度額適用区分 and the 特定疾病 cap, per person, with their history in person_changes.

CREATE TABLE benefits (
    id           bigserial PRIMARY KEY,
    person_id    bigint NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    kind         text COLLATE "C" NOT NULL CHECK (kind IN ('copay', 'limit', 'specified_disease')),
    value        text COLLATE "C" NOT NULL,
    -- '' for copay and limit, so that (person, kind, disease) is a plain btree key.
    disease      text COLLATE "C" NOT NULL DEFAULT ''
                 CHECK (disease IN ('', 'dialysis', 'hemophilia', 'hiv')),
    valid_from   date NOT NULL,
    -- Inclusive: the last day in force; NULL is open-ended.
    valid_until  date,
    import_id    bigint,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_until IS NULL OR valid_until >= valid_from),
    CHECK (CASE kind
             WHEN 'copay' THEN value IN ('10', '20', '30') AND disease = ''
             WHEN 'limit' THEN value ~ '^(A0[1-6]|B0[1-9]|B10)$' AND disease = ''
             ELSE value IN ('10000', '20000')
           END),
    CONSTRAINT benefits_key UNIQUE (person_id, kind, disease, valid_from)
);

-- Records of one kind (of 特定疾病: one disease) never overlap for a person, whoever writes
-- them. As for qualifications, a statement-level trigger rather than EXCLUDE USING gist: one
-- join of the statement's rows against the benefits_key btree per statement, instead of a gist
-- insert per row on the million-row import path; the advisory lock serialises writers.
CREATE FUNCTION benefits_refuse_overlap() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    clash record;
BEGIN
    PERFORM pg_advisory_xact_lock(6001127091038016772);
    SELECT c.person_id, c.kind, c.valid_from AS a_from, c.valid_until AS a_to,
           b.valid_from AS b_from, b.valid_until AS b_to
      INTO clash
      FROM changed c
      JOIN benefits b ON b.person_id = c.person_id AND b.kind = c.kind
                     AND b.disease = c.disease AND b.id <> c.id
     WHERE daterange(b.valid_from, b.valid_until, '[]') && daterange(c.valid_from, c.valid_until, '[]')
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'exclusion_violation',
            CONSTRAINT = 'benefits_no_overlap',
            MESSAGE = format('%s records overlap for person %s: [%s, %s] and [%s, %s]',
                             clash.kind, clash.person_id, clash.a_from, coalesce(clash.a_to::text, ''),
                             clash.b_from, coalesce(clash.b_to::text, ''));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER benefits_no_overlap_insert
    AFTER INSERT ON benefits REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION benefits_refuse_overlap();
CREATE TRIGGER benefits_no_overlap_update
    AFTER UPDATE ON benefits REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION benefits_refuse_overlap();

-- Benefit history lives with the person's other changes.
ALTER TABLE person_changes DROP CONSTRAINT person_changes_action_check;
ALTER TABLE person_changes ADD CONSTRAINT person_changes_action_check
    CHECK (action IN ('updated', 'qualification_added', 'qualification_changed',
                      'benefit_added', 'benefit_changed', 'benefit_ended'));

ALTER TABLE imports DROP CONSTRAINT imports_kind_check;
ALTER TABLE imports ADD CONSTRAINT imports_kind_check
    CHECK (kind IN ('persons', 'linkages', 'residents', 'benefits'));

-- Whether this insurer prints the 限度額適用区分 and 特定疾病 on its certificates (domain.md:
-- optional printed items).
ALTER TABLE insurers ADD COLUMN cert_prints_benefits boolean NOT NULL DEFAULT false;

-- The audit's new kind: a co-pay record the age rules do not allow, a 特定疾病 record outside
-- the qualification. It concerns a person's benefits, not a number: mn_last4 is '' for it.
ALTER TABLE findings DROP CONSTRAINT findings_kind_check;
ALTER TABLE findings ADD CONSTRAINT findings_kind_check
    CHECK (kind IN ('invalid_check_digit', 'number_shared', 'multiple_numbers',
                    'not_in_registry', 'resident_removed', 'identity_mismatch',
                    'address_mismatch', 'benefit_inconsistent'));
ALTER TABLE findings DROP CONSTRAINT findings_mn_last4_check;
ALTER TABLE findings ADD CONSTRAINT findings_mn_last4_check
    CHECK (mn_last4 ~ '^[0-9]{4}$' OR (kind = 'benefit_inconsistent' AND mn_last4 = ''));
