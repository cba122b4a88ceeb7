DELETE FROM findings WHERE kind = 'benefit_inconsistent';
ALTER TABLE findings DROP CONSTRAINT findings_mn_last4_check;
ALTER TABLE findings ADD CONSTRAINT findings_mn_last4_check CHECK (mn_last4 ~ '^[0-9]{4}$');
ALTER TABLE findings DROP CONSTRAINT findings_kind_check;
ALTER TABLE findings ADD CONSTRAINT findings_kind_check
    CHECK (kind IN ('invalid_check_digit', 'number_shared', 'multiple_numbers',
                    'not_in_registry', 'resident_removed', 'identity_mismatch',
                    'address_mismatch'));
ALTER TABLE insurers DROP COLUMN cert_prints_benefits;
DELETE FROM imports WHERE kind = 'benefits';
ALTER TABLE imports DROP CONSTRAINT imports_kind_check;
ALTER TABLE imports ADD CONSTRAINT imports_kind_check
    CHECK (kind IN ('persons', 'linkages', 'residents'));
DELETE FROM person_changes WHERE action LIKE 'benefit_%';
ALTER TABLE person_changes DROP CONSTRAINT person_changes_action_check;
ALTER TABLE person_changes ADD CONSTRAINT person_changes_action_check
    CHECK (action IN ('updated', 'qualification_added', 'qualification_changed'));
DROP TABLE benefits;
DROP FUNCTION benefits_refuse_overlap();
