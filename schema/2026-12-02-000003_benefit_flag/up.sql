-- Whether a person has (ever had) a benefit record, so that the eligibility lookup reads the
-- benefits table only for the persons who have one (issue 14: one index probe per answer cost
-- 15-20% of the eligibility throughput; most insured persons have no record at all).
--
-- Set by a statement trigger on every insert into benefits, whoever writes it, so no writer can
-- forget it. Records are never deleted (ended or corrected in place; the application has no
-- DELETE on benefits), so the flag is never cleared: a stale `true` costs one probe, never a
-- wrong answer.
ALTER TABLE persons ADD COLUMN has_benefits boolean NOT NULL DEFAULT false;

UPDATE persons p SET has_benefits = true
 WHERE EXISTS (SELECT 1 FROM benefits b WHERE b.person_id = p.id);

CREATE FUNCTION benefits_mark_person() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE persons p SET has_benefits = true
      FROM (SELECT DISTINCT person_id FROM added) a
     WHERE p.id = a.person_id AND NOT p.has_benefits;
    RETURN NULL;
END
$$;

CREATE TRIGGER benefits_mark_person
    AFTER INSERT ON benefits REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION benefits_mark_person();
