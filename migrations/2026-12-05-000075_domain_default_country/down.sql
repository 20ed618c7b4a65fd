ALTER TABLE domains DROP COLUMN default_country;
