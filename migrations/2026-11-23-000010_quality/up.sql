-- Click quality (SPEC "Tracking links and click quality"): 100 minus penalties, with the reasons.
ALTER TABLE touches
    ADD COLUMN quality_score integer NOT NULL DEFAULT 100 CHECK (quality_score BETWEEN 0 AND 100),
    ADD COLUMN quality_reasons text[] NOT NULL DEFAULT '{}';
