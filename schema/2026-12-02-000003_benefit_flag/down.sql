DROP TRIGGER benefits_mark_person ON benefits;
DROP FUNCTION benefits_mark_person();
ALTER TABLE persons DROP COLUMN has_benefits;
