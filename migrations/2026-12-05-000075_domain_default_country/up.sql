-- A domain's default country (issue 19): phone numbers sent without their country code
-- ("020 7946 0958") are completed with this country's calling code before hashing, when the
-- event itself names no country. ISO 3166-1 alpha-2, upper case; NULL: such numbers are left out.
ALTER TABLE domains ADD COLUMN default_country text
    CONSTRAINT domains_default_country_check CHECK (default_country ~ '^[A-Z]{2}$');
