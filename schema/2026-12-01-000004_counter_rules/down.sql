CREATE OR REPLACE FUNCTION certificates_revoke_on_loss() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH voided AS (
        UPDATE certificates c
           SET status = 'revoked', updated_at = now()
          FROM changed q
         WHERE c.status = 'active'
           AND c.person_id = q.person_id
           AND q.lost_on IS NOT NULL
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
UPDATE certificates SET status = 'revoked' WHERE status = 'pending';
DELETE FROM certificate_events WHERE action IN ('shortened', 'activated');
ALTER TABLE certificate_events DROP CONSTRAINT certificate_events_action_check;
ALTER TABLE certificate_events ADD CONSTRAINT certificate_events_action_check
    CHECK (action IN ('issued', 'reissued', 'superseded', 'revoked', 'returned', 'expired'));
DROP INDEX linkages_suspended;
DROP INDEX certificates_starting;
DROP INDEX certificates_expiring;
CREATE INDEX certificates_expiring ON certificates (valid_until) WHERE status = 'active';
DROP INDEX certificates_one_pending;
ALTER TABLE certificates DROP CONSTRAINT certificates_valid_from_issue;
ALTER TABLE certificates DROP CONSTRAINT certificates_status_check;
ALTER TABLE certificates ADD CONSTRAINT certificates_status_check
    CHECK (status IN ('active', 'superseded', 'revoked', 'returned', 'expired'));
ALTER TABLE persons
    DROP COLUMN certificate_requested,
    DROP COLUMN residence_until,
    DROP COLUMN voluntary_until;
