-- Registry foundation: insurers, insured persons, qualification history, change history,
-- My Number linkages (sealed), resident-register snapshots, and the import journal.
--
-- Key columns are text with CHECK constraints rather than char(n): diesel binds text, and a
-- text = char(n) comparison cannot use the char(n) column's index.
-- An absent 記号 or 枝番 is stored as '' (never '00'): the person key then stays a plain
-- four-column equality that one unique btree index serves, which NULLs would not.
-- Identifier columns use COLLATE "C": they are codes, not words, so byte order is the right
-- order, and btree comparisons skip the locale machinery (measured: a visibly faster bulk
-- insert into the unique person key than under a C.UTF-8 database default).

CREATE TABLE imports (
    id             bigserial PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('persons', 'linkages', 'residents')),
    file_name      text NOT NULL,
    actor          text NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    rows_read      bigint NOT NULL DEFAULT 0,
    rows_inserted  bigint NOT NULL DEFAULT 0,
    rows_updated   bigint NOT NULL DEFAULT 0,
    rows_unchanged bigint NOT NULL DEFAULT 0,
    warnings       bigint NOT NULL DEFAULT 0
);

-- 保険者. The certificate validity policy lives here because each insurer sets its own.
CREATE TABLE insurers (
    insurer_number    text COLLATE "C" PRIMARY KEY CHECK (insurer_number ~ '^[0-9]{8}$'),
    name              text NOT NULL DEFAULT '',
    kind              text NOT NULL DEFAULT 'unknown'
                      CHECK (kind IN ('kyokai', 'kumiai', 'kyosai', 'kokuho', 'koki', 'other', 'unknown')),
    cert_policy       text NOT NULL DEFAULT 'years_from_issue'
                      CHECK (cert_policy IN ('years_from_issue', 'fixed_date', 'yearly_july')),
    cert_years        smallint NOT NULL DEFAULT 5 CHECK (cert_years BETWEEN 1 AND 5),
    cert_fixed_until  date,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (cert_policy <> 'fixed_date' OR cert_fixed_until IS NOT NULL)
);

-- persons, qualifications and linkages record the import that last wrote them (import_id)
-- without a foreign key: the column is provenance written by the import in the transaction
-- that creates the journal row, and a per-row RI trigger on the bulk path cost 1.7 s per
-- million rows (measured). person_changes, whose rows are few, keeps its foreign key.
CREATE TABLE persons (
    id              bigserial PRIMARY KEY,
    insurer_number  text COLLATE "C" NOT NULL REFERENCES insurers (insurer_number),
    symbol          text COLLATE "C" NOT NULL DEFAULT '' CHECK (octet_length(symbol) <= 38 AND symbol !~ '\s'),
    number          text COLLATE "C" NOT NULL CHECK (number <> '' AND octet_length(number) <= 38 AND number !~ '\s'),
    branch          text COLLATE "C" NOT NULL DEFAULT '' CHECK (branch ~ '^([0-9]{2})?$'),
    relationship    smallint NOT NULL CHECK (relationship IN (1, 2)),
    name_kanji      text NOT NULL CHECK (name_kanji <> ''),
    name_kana       text NOT NULL CHECK (name_kana <> ''),
    -- Full-width katakana without spaces: what a search by kana name in any width compares.
    kana_key        text COLLATE "C" NOT NULL,
    birth_date      date NOT NULL,
    sex             smallint NOT NULL CHECK (sex IN (1, 2, 3)),
    postal_code     text CHECK (postal_code ~ '^[0-9]{7}$'),
    address         text,
    copay_rate      smallint CHECK (copay_rate IN (10, 20, 30)),
    import_id       bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT persons_key UNIQUE (insurer_number, symbol, number, branch)
);
CREATE INDEX persons_kana_birth ON persons (kana_key, birth_date);

-- 資格取得日/資格喪失日. lost_on is the first day without eligibility, so a period is the
-- half-open range [acquired_on, lost_on).
CREATE TABLE qualifications (
    id           bigserial PRIMARY KEY,
    person_id    bigint NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    acquired_on  date NOT NULL,
    lost_on      date,
    loss_reason  text CHECK (loss_reason IN ('01', '02', '03', '99')),
    import_id    bigint,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (lost_on IS NULL OR lost_on > acquired_on),
    CHECK (loss_reason IS NULL OR lost_on IS NOT NULL),
    CONSTRAINT qualifications_person_acquired UNIQUE (person_id, acquired_on)
);

-- Overlapping periods for one person are refused by the database itself, for every writer.
--
-- Not an EXCLUDE USING gist constraint, though that is the textbook form: on PostgreSQL 15 a
-- btree_gist insert costs 25-35 us per row here (and btree_gist has no sorted index build), so
-- a million-person import would spend half a minute in it. A statement-level trigger checks
-- all rows a statement wrote in one hash or merge join against the (person_id, acquired_on)
-- btree, about a second per million rows. A transaction-scoped advisory lock serialises
-- writers of periods, so two transactions cannot each add one of two overlapping periods
-- unseen by the other; the check runs after the lock, on a fresh snapshot (READ COMMITTED).
CREATE FUNCTION qualifications_refuse_overlap() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    clash record;
BEGIN
    PERFORM pg_advisory_xact_lock(6001127091038016771);
    SELECT c.person_id, c.acquired_on AS a_from, c.lost_on AS a_to,
           q.acquired_on AS b_from, q.lost_on AS b_to
      INTO clash
      FROM changed c
      JOIN qualifications q ON q.person_id = c.person_id AND q.id <> c.id
     WHERE daterange(q.acquired_on, q.lost_on, '[)') && daterange(c.acquired_on, c.lost_on, '[)')
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'exclusion_violation',
            CONSTRAINT = 'qualifications_no_overlap',
            MESSAGE = format('qualification periods overlap for person %s: [%s, %s) and [%s, %s)',
                             clash.person_id, clash.a_from, coalesce(clash.a_to::text, ''),
                             clash.b_from, coalesce(clash.b_to::text, ''));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER qualifications_no_overlap_insert
    AFTER INSERT ON qualifications REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION qualifications_refuse_overlap();
CREATE TRIGGER qualifications_no_overlap_update
    AFTER UPDATE ON qualifications REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION qualifications_refuse_overlap();

-- Every change to a person or a qualification period: the previous and new value of each
-- field that changed, and who changed it (an import or a named user).
CREATE TABLE person_changes (
    id          bigserial PRIMARY KEY,
    person_id   bigint NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    import_id   bigint REFERENCES imports (id),
    actor       text NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    action      text NOT NULL CHECK (action IN ('updated', 'qualification_added', 'qualification_changed')),
    changes     jsonb NOT NULL
);
CREATE INDEX person_changes_person ON person_changes (person_id, changed_at);

-- 個人番号 linkages. The number itself is only ever stored sealed (AES-256-GCM, key id kept
-- for rotation); equality and duplicate detection use the HMAC blind index; last4 is what
-- people are shown.
CREATE TABLE linkages (
    id                  bigserial PRIMARY KEY,
    person_id           bigint NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    mn_blind            bytea NOT NULL CHECK (octet_length(mn_blind) = 32),
    mn_sealed           bytea NOT NULL,
    mn_key_id           integer NOT NULL,
    mn_last4            text NOT NULL CHECK (mn_last4 ~ '^[0-9]{4}$'),
    check_digit_ok      boolean NOT NULL,
    source              text NOT NULL CHECK (source IN ('employer', 'applicant', 'jlis', 'other')),
    linked_on           date NOT NULL,
    status              text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'revoked')),
    identity_confirmed  boolean NOT NULL DEFAULT false,
    import_id           bigint,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT linkages_person_number UNIQUE (person_id, mn_blind)
);
CREATE INDEX linkages_blind ON linkages (mn_blind);

-- What happened to a linkage after it was registered, with the reason and who did it.
CREATE TABLE linkage_events (
    id          bigserial PRIMARY KEY,
    linkage_id  bigint NOT NULL REFERENCES linkages (id) ON DELETE CASCADE,
    action      text NOT NULL,
    reason      text,
    actor       text NOT NULL,
    import_id   bigint REFERENCES imports (id),
    at          timestamptz NOT NULL DEFAULT now(),
    details     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX linkage_events_linkage ON linkage_events (linkage_id, at);

-- 住基 extract: each import is a new snapshot; the audit compares against the latest.
CREATE TABLE resident_snapshots (
    id          bigserial PRIMARY KEY,
    import_id   bigint NOT NULL REFERENCES imports (id),
    file_name   text NOT NULL,
    taken_at    timestamptz NOT NULL DEFAULT now(),
    rows        bigint NOT NULL DEFAULT 0
);

CREATE TABLE resident_records (
    snapshot_id     bigint NOT NULL REFERENCES resident_snapshots (id) ON DELETE CASCADE,
    mn_blind        bytea NOT NULL CHECK (octet_length(mn_blind) = 32),
    mn_last4        text NOT NULL CHECK (mn_last4 ~ '^[0-9]{4}$'),
    check_digit_ok  boolean NOT NULL,
    name_kanji      text NOT NULL CHECK (name_kanji <> ''),
    name_kana       text,
    birth_date      date NOT NULL,
    sex             smallint NOT NULL CHECK (sex IN (1, 2)),
    address         text,
    status          text NOT NULL CHECK (status IN ('active', 'removed')),
    PRIMARY KEY (snapshot_id, mn_blind)
);
