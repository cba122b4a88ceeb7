-- Registry foundation: insurers, insured persons, qualification history, change history,
-- My Number linkages (sealed), resident-register snapshots, and the import journal.
--
-- Key columns are text with CHECK constraints rather than char(n): diesel binds text, and a
-- text = char(n) comparison cannot use the char(n) column's index.
-- An absent 記号 or 枝番 is stored as '' (never '00'): the person key then stays a plain
-- four-column equality that one unique btree index serves, which NULLs would not.

CREATE EXTENSION IF NOT EXISTS btree_gist;

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
    insurer_number    text PRIMARY KEY CHECK (insurer_number ~ '^[0-9]{8}$'),
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

CREATE TABLE persons (
    id              bigserial PRIMARY KEY,
    insurer_number  text NOT NULL REFERENCES insurers (insurer_number),
    symbol          text NOT NULL DEFAULT '' CHECK (octet_length(symbol) <= 38 AND symbol !~ '\s'),
    number          text NOT NULL CHECK (number <> '' AND octet_length(number) <= 38 AND number !~ '\s'),
    branch          text NOT NULL DEFAULT '' CHECK (branch ~ '^([0-9]{2})?$'),
    relationship    smallint NOT NULL CHECK (relationship IN (1, 2)),
    name_kanji      text NOT NULL CHECK (name_kanji <> ''),
    name_kana       text NOT NULL CHECK (name_kana <> ''),
    -- Full-width katakana without spaces: what a search by kana name in any width compares.
    kana_key        text NOT NULL,
    birth_date      date NOT NULL,
    sex             smallint NOT NULL CHECK (sex IN (1, 2, 3)),
    postal_code     text CHECK (postal_code ~ '^[0-9]{7}$'),
    address         text,
    copay_rate      smallint CHECK (copay_rate IN (10, 20, 30)),
    import_id       bigint REFERENCES imports (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT persons_key UNIQUE (insurer_number, symbol, number, branch)
);
CREATE INDEX persons_kana_birth ON persons (kana_key, birth_date);

-- 資格取得日/資格喪失日. lost_on is the first day without eligibility, so a period is the
-- half-open range [acquired_on, lost_on). The exclusion constraint makes overlapping periods
-- for one person impossible whatever code writes them.
CREATE TABLE qualifications (
    id           bigserial PRIMARY KEY,
    person_id    bigint NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    acquired_on  date NOT NULL,
    lost_on      date,
    loss_reason  text CHECK (loss_reason IN ('01', '02', '03', '99')),
    import_id    bigint REFERENCES imports (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (lost_on IS NULL OR lost_on > acquired_on),
    CHECK (loss_reason IS NULL OR lost_on IS NOT NULL),
    CONSTRAINT qualifications_no_overlap
        EXCLUDE USING gist (person_id WITH =, daterange(acquired_on, lost_on, '[)') WITH &&)
);

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
    import_id           bigint REFERENCES imports (id),
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
