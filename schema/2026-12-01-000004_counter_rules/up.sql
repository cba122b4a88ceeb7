-- Right at the counter (issue 13): the dates that cut a certificate short and the 要配慮者
-- request are stored on the person, renewals may be issued ahead of their first valid day
-- (pending), and a loss recorded in advance ends a certificate's validity on the loss date
-- instead of voiding it while the person is still insured.

-- Stored on the person so that every issuance path (the counter, the monthly run) uses them.
ALTER TABLE persons
    ADD COLUMN voluntary_until date,
    ADD COLUMN residence_until date,
    ADD COLUMN certificate_requested boolean NOT NULL DEFAULT false;

-- pending: issued, valid from a later day (the renewal that follows the current certificate).
ALTER TABLE certificates DROP CONSTRAINT certificates_status_check;
ALTER TABLE certificates ADD CONSTRAINT certificates_status_check
    CHECK (status IN ('active', 'pending', 'superseded', 'revoked', 'returned', 'expired'));
ALTER TABLE certificates ADD CONSTRAINT certificates_valid_from_issue
    CHECK (valid_from >= issued_on);
-- With certificates_one_active: at most one active and one pending certificate per person.
CREATE UNIQUE INDEX certificates_one_pending ON certificates (person_id) WHERE status = 'pending';
CREATE INDEX certificates_starting ON certificates (valid_from) WHERE status = 'pending';
-- Settling (expire, revoke on a loss date) looks at active and pending certificates by end.
DROP INDEX certificates_expiring;
CREATE INDEX certificates_expiring ON certificates (valid_until)
    WHERE status IN ('active', 'pending');

-- The monthly run treats a person whose linkage is suspended (and none active) as having no
-- usable card: it finds them through the few suspended rows, not a scan of every linkage.
CREATE INDEX linkages_suspended ON linkages (person_id) WHERE status = 'suspended';

ALTER TABLE certificate_events DROP CONSTRAINT certificate_events_action_check;
ALTER TABLE certificate_events ADD CONSTRAINT certificate_events_action_check
    CHECK (action IN ('issued', 'reissued', 'superseded', 'revoked', 'returned', 'expired',
                      'shortened', 'activated'));

-- A recorded loss, whoever records it: a certificate of the lost period that would only have
-- started on or after the loss is void at once (revoked); one in force ends its validity the
-- day before the loss (valid_until_reason qualification_lost) and stays active while the person
-- is still insured, so a loss recorded in advance does not void a card the person may still
-- use. When the loss date arrives, `shikaku certificates expire` (daily), the monthly run and
-- the import that recorded the loss revoke it: a certificate ended by a loss is revoked, not
-- merely expired, because it must be returned.
CREATE OR REPLACE FUNCTION certificates_revoke_on_loss() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH voided AS (
        UPDATE certificates c
           SET status = 'revoked', updated_at = now()
          FROM changed q
         WHERE c.status IN ('active', 'pending')
           AND c.person_id = q.person_id
           AND q.lost_on IS NOT NULL
           -- The period the certificate was issued for (its 資格取得日 is printed on it).
           AND q.acquired_on = (c.printed ->> 'acquired_on')::date
           AND q.lost_on <= c.valid_from
        RETURNING c.id, q.lost_on, q.loss_reason
    )
    INSERT INTO certificate_events (certificate_id, action, reason, actor, details)
    SELECT id, 'revoked',
           format('qualification lost on %s (資格喪失): the certificate is void and must be returned',
                  lost_on),
           'system:qualification_lost',
           jsonb_build_object('lost_on', lost_on, 'loss_reason', loss_reason)
      FROM voided;

    WITH cut AS (
        UPDATE certificates c
           SET valid_until = q.lost_on - 1, valid_until_reason = 'qualification_lost',
               updated_at = now()
          FROM changed q
         WHERE c.status IN ('active', 'pending')
           AND c.person_id = q.person_id
           AND q.lost_on IS NOT NULL
           AND q.acquired_on = (c.printed ->> 'acquired_on')::date
           AND q.lost_on > c.valid_from
           AND q.lost_on <= c.valid_until
        RETURNING c.id, q.lost_on, q.loss_reason
    )
    INSERT INTO certificate_events (certificate_id, action, reason, actor, details)
    SELECT id, 'shortened',
           format('qualification lost on %s (資格喪失): valid until %s, revoked on that day',
                  lost_on, lost_on - 1),
           'system:qualification_lost',
           jsonb_build_object('lost_on', lost_on, 'loss_reason', loss_reason,
                              'valid_until', lost_on - 1)
      FROM cut;
    RETURN NULL;
END
$$;

-- Until now a 任意継続 or residence-permit end was typed at the counter and kept only on the
-- certificate: the person takes it over from their current certificate.
UPDATE persons p
   SET voluntary_until = (c.printed -> 'options' ->> 'voluntary_until')::date,
       residence_until = (c.printed -> 'options' ->> 'residence_until')::date
  FROM certificates c
 WHERE c.person_id = p.id AND c.status = 'active'
   AND (c.printed -> 'options' ->> 'voluntary_until' IS NOT NULL
        OR c.printed -> 'options' ->> 'residence_until' IS NOT NULL);
