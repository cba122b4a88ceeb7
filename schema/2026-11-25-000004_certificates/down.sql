DROP TRIGGER certificates_revoke_on_loss_update ON qualifications;
DROP TRIGGER certificates_revoke_on_loss_insert ON qualifications;
DROP FUNCTION certificates_revoke_on_loss();
DROP TABLE certificate_events;
DROP TABLE certificates;
DROP SEQUENCE certificate_number_seq;
