ALTER TABLE touches DROP COLUMN quality_score, DROP COLUMN quality_reasons;
