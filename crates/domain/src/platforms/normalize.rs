//! Normalisation and hashing of personal data before it is sent to a platform. Every platform
//! matches on SHA-256 hashes of normalised values, so the same input must always give the same
//! bytes: trimmed, lowercased, phone numbers in E.164.

use sha2::{Digest, Sha256};

/// Country calling codes (ITU-T E.164 assignments, "List of ITU-T Recommendation E.164 assigned
/// country codes", https://www.itu.int/pub/T-SP-E.164D) of the ISO 3166-1 alpha-2 countries a
/// national number is completed for. Every country listed dials nationally with the trunk
/// prefix 0 or none (Italy keeps its leading 0); countries whose trunk prefix is another digit
/// (Russia and Kazakhstan's 8, Hungary's 06) are left out on purpose, so their national numbers
/// are left out of requests rather than sent wrong.
const CALLING_CODES: &[(&str, &str)] = &[
    ("US", "1"),
    ("CA", "1"),
    ("PR", "1"),
    ("GB", "44"),
    ("IE", "353"),
    ("DE", "49"),
    ("AT", "43"),
    ("CH", "41"),
    ("FR", "33"),
    ("BE", "32"),
    ("NL", "31"),
    ("LU", "352"),
    ("ES", "34"),
    ("PT", "351"),
    ("IT", "39"),
    ("DK", "45"),
    ("SE", "46"),
    ("NO", "47"),
    ("FI", "358"),
    ("PL", "48"),
    ("CZ", "420"),
    ("GR", "30"),
    ("AU", "61"),
    ("NZ", "64"),
    ("JP", "81"),
    ("KR", "82"),
    ("SG", "65"),
    ("IN", "91"),
    ("BR", "55"),
    ("MX", "52"),
    ("AR", "54"),
    ("ZA", "27"),
    ("AE", "971"),
    ("IL", "972"),
    ("UA", "380"),
    ("TR", "90"),
    ("RO", "40"),
    ("SK", "421"),
    ("SI", "386"),
    ("HR", "385"),
    ("RS", "381"),
    ("BG", "359"),
    ("EE", "372"),
    ("LV", "371"),
    ("IS", "354"),
    ("MT", "356"),
    ("CY", "357"),
    ("CN", "86"),
    ("HK", "852"),
    ("TW", "886"),
    ("TH", "66"),
    ("MY", "60"),
    ("ID", "62"),
    ("PH", "63"),
    ("VN", "84"),
    ("PK", "92"),
    ("SA", "966"),
    ("QA", "974"),
    ("KW", "965"),
    ("EG", "20"),
    ("NG", "234"),
    ("KE", "254"),
    ("MA", "212"),
    ("CL", "56"),
    ("CO", "57"),
    ("PE", "51"),
];

/// The calling code for an ISO country (any case), when known.
pub fn calling_code(country_code: &str) -> Option<&'static str> {
    let cc = country_code.trim();
    CALLING_CODES
        .iter()
        .find(|(iso, _)| iso.eq_ignore_ascii_case(cc))
        .map(|(_, code)| *code)
}

/// A domain's default country as saved: upper-case ISO 3166-1 alpha-2 whose calling code is
/// known; None when empty. Err names the field.
pub fn default_country(raw: &str) -> Result<Option<String>, String> {
    let code = raw.trim().to_ascii_uppercase();
    if code.is_empty() {
        return Ok(None);
    }
    if code.len() != 2 || rust_iso3166::from_alpha2(&code).is_none() {
        return Err(format!(
            "defaultCountry \"{}\" is not an ISO 3166-1 alpha-2 country code such as US or GB",
            raw.trim()
        ));
    }
    if calling_code(&code).is_none() {
        return Err(format!(
            "defaultCountry {code}: Postback does not know this country's calling code yet; send \
             phone numbers with their country code (+…) instead"
        ));
    }
    Ok(Some(code))
}

/// Trimmed and lowercased; None when empty.
pub fn normalize_email(s: &str) -> Option<String> {
    let e = s.trim().to_lowercase();
    (!e.is_empty()).then_some(e)
}

/// E.164 digits without the leading '+': "+1 (555) 123-4567" → "15551234567",
/// "00 44 20 7946 0958" → "442079460958". A national number ("020 7946 0958") gets the calling
/// code of `country_code` ("GB" → "442079460958") with its trunk zero dropped; without a country
/// whose calling code is known it is None: a number whose country is a guess would match
/// nobody, or somebody else. None too when fewer than 7 or more than 15 digits remain.
pub fn normalize_phone(s: &str, country_code: Option<&str>) -> Option<String> {
    let mut s = s.trim().to_owned();
    if s.starts_with('+') || s.starts_with("00") {
        // "+44 (0)20 …": the bracketed trunk zero is not dialled from abroad.
        s = s.replace("(0)", "");
    }
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let e164 = if s.starts_with('+') {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_owned()
    } else {
        national(&digits, country_code.and_then(calling_code)?)
    };
    let e164 = e164.trim_start_matches('0');
    (7..=15).contains(&e164.len()).then(|| e164.to_owned())
}

/// A number written without '+' or "00": completed with the country's calling code unless it
/// already starts with it.
fn national(digits: &str, code: &str) -> String {
    if code == "1" {
        // North American numbers: ten digits, or eleven with the leading 1.
        return match digits.len() {
            10 => format!("1{digits}"),
            _ => digits.to_owned(),
        };
    }
    if digits.starts_with('0') {
        // A trunk prefix: the number is national. Italy keeps its leading zero.
        let rest = if code == "39" {
            digits
        } else {
            digits.trim_start_matches('0')
        };
        return format!("{code}{rest}");
    }
    if digits.starts_with(code) && digits.len() >= 11 {
        digits.to_owned()
    } else {
        format!("{code}{digits}")
    }
}

/// Trimmed, lowercased, punctuation dropped, inner whitespace collapsed to one space:
/// " O'Brien-Smith " → "obriensmith", "Anne  Marie" → "anne marie". None when nothing is left.
pub fn normalize_name(s: &str) -> Option<String> {
    let kept: String = s
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    let n = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    (!n.is_empty()).then_some(n)
}

/// A city as Meta matches it: lowercase letters only, no spaces or punctuation
/// ("San Francisco" → "sanfrancisco").
pub fn normalize_city(s: &str) -> Option<String> {
    let c: String = s
        .chars()
        .filter(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect();
    (!c.is_empty()).then_some(c)
}

/// A state or country code: lowercase letters and digits only ("CA" → "ca").
pub fn normalize_code(s: &str) -> Option<String> {
    let c: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (!c.is_empty()).then_some(c)
}

/// SHA-256 of the UTF-8 bytes, as lowercase hex.
pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The normalised email's SHA-256; None when the email is empty.
pub fn hashed_email(s: &str) -> Option<String> {
    normalize_email(s).map(|e| sha256_hex(&e))
}

/// Google's email normalisation: [`normalize_email`], and for gmail.com and googlemail.com
/// addresses every '.' before the '@' and a '+' with all after it in the local part removed;
/// other domains keep their dots and '+' (Data Manager API, "Format user data" › email_address,
/// https://developers.google.com/data-manager/api/devguides/concepts/formatting; the same rule
/// for Google Ads enhanced conversions).
pub fn normalize_google_email(s: &str) -> Option<String> {
    let e = normalize_email(s)?;
    let Some((local, domain)) = e.rsplit_once('@') else {
        return Some(e);
    };
    if !matches!(domain, "gmail.com" | "googlemail.com") {
        return Some(e);
    }
    let local = local.split('+').next().unwrap_or_default().replace('.', "");
    Some(format!("{local}@{domain}"))
}

/// The SHA-256 of [`normalize_google_email`]; None when the email is empty.
pub fn hashed_google_email(s: &str) -> Option<String> {
    normalize_google_email(s).map(|e| sha256_hex(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_EMAIL_SHA256: &str =
        "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b";

    #[test]
    fn sha256_vectors() {
        assert_eq!(sha256_hex("test@example.com"), TEST_EMAIL_SHA256);
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn emails() {
        assert_eq!(hashed_email("test@example.com").unwrap(), TEST_EMAIL_SHA256);
        assert_eq!(
            hashed_email(" Test@Example.COM ").unwrap(),
            TEST_EMAIL_SHA256
        );
        assert_eq!(
            hashed_email("\tTEST@EXAMPLE.COM\n").unwrap(),
            TEST_EMAIL_SHA256
        );
        assert_eq!(normalize_email("  "), None);
        assert_eq!(hashed_email(""), None);
    }

    /// The examples of https://developers.google.com/data-manager/api/devguides/concepts/formatting.
    #[test]
    fn google_emails() {
        let g = |s| normalize_google_email(s).unwrap();
        assert_eq!(
            g("cloudy.sanfrancisco+shopping@gmail.com"),
            "cloudysanfrancisco@gmail.com"
        );
        assert_eq!(g("user.name+NYC@Example.com"), "user.name+nyc@example.com");
        assert_eq!(g(" J.Doe+x+y@GoogleMail.com "), "jdoe@googlemail.com");
        assert_eq!(g("no-at-sign"), "no-at-sign");
        assert_eq!(
            hashed_google_email("test.+promo@gmail.com").unwrap(),
            sha256_hex("test@gmail.com")
        );
        // Meta and TikTok keep the address as given (lowercased).
        assert_eq!(
            normalize_email("Cloudy.SF+x@gmail.com").unwrap(),
            "cloudy.sf+x@gmail.com"
        );
    }

    #[test]
    fn phones() {
        let p = |s, cc| normalize_phone(s, cc);
        assert_eq!(p("+1 (555) 123-4567", None).as_deref(), Some("15551234567"));
        assert_eq!(
            p("+1 (555) 123-4567", Some("GB")).as_deref(),
            Some("15551234567")
        );
        assert_eq!(
            p("00 44 20 7946 0958", None).as_deref(),
            Some("442079460958")
        );
        assert_eq!(
            p("+44 (0)20 7946 0958", None).as_deref(),
            Some("442079460958")
        );
        // National numbers take the event country's calling code.
        assert_eq!(
            p("(555) 123-4567", Some("US")).as_deref(),
            Some("15551234567")
        );
        assert_eq!(
            p("1-555-123-4567", Some("us")).as_deref(),
            Some("15551234567")
        );
        assert_eq!(
            p("555.123.4567", Some("CA")).as_deref(),
            Some("15551234567")
        );
        assert_eq!(
            p("020 7946 0958", Some("GB")).as_deref(),
            Some("442079460958")
        );
        assert_eq!(
            p("07700 900123", Some("GB")).as_deref(),
            Some("447700900123")
        );
        assert_eq!(
            p("447700900123", Some("GB")).as_deref(),
            Some("447700900123")
        );
        assert_eq!(p("030 1234567", Some("DE")).as_deref(), Some("49301234567"));
        assert_eq!(
            p("01 23 45 67 89", Some("FR")).as_deref(),
            Some("33123456789")
        );
        assert_eq!(
            p("0412 345 678", Some("AU")).as_deref(),
            Some("61412345678")
        );
        assert_eq!(
            p("06 1234 5678", Some("IT")).as_deref(),
            Some("390612345678")
        );
        // No country, or one whose calling code is not known: left out, not guessed.
        assert_eq!(p("0123 456 789", Some("ZZ")), None);
        assert_eq!(p("8 912 345 67 89", Some("RU")), None);
        assert_eq!(p("5551234567", None), None);
        assert_eq!(p("020 7946 0958", None), None);
        // International numbers need no country.
        assert_eq!(p("+49 30 1234567", None).as_deref(), Some("49301234567"));
        assert_eq!(
            p("0041 44 668 18 00", Some("US")).as_deref(),
            Some("41446681800")
        );
        assert_eq!(
            p("0501 234 567", Some("ua")).as_deref(),
            Some("380501234567")
        );
        // Too short or too long.
        assert_eq!(p("12345", None), None);
        assert_eq!(p("+1 23", Some("US")), None);
        assert_eq!(p("", Some("US")), None);
        assert_eq!(p("call me", Some("US")), None);
        assert_eq!(p("+1234567890123456", None), None);
    }

    #[test]
    fn names_and_places() {
        assert_eq!(normalize_name("  Jane ").as_deref(), Some("jane"));
        assert_eq!(
            normalize_name("O'Brien-Smith").as_deref(),
            Some("obriensmith")
        );
        assert_eq!(normalize_name("Anne  Marie").as_deref(), Some("anne marie"));
        assert_eq!(normalize_name("JOSÉ").as_deref(), Some("josé"));
        assert_eq!(normalize_name(" .,- "), None);
        assert_eq!(
            normalize_city("San Francisco").as_deref(),
            Some("sanfrancisco")
        );
        assert_eq!(normalize_city("St. Louis").as_deref(), Some("stlouis"));
        assert_eq!(normalize_code(" CA ").as_deref(), Some("ca"));
        assert_eq!(normalize_code("").as_deref(), None);
        assert_eq!(calling_code("gb"), Some("44"));
        assert_eq!(calling_code("ZZ"), None);
    }

    #[test]
    fn default_countries() {
        assert_eq!(default_country(" gb ").unwrap().as_deref(), Some("GB"));
        assert_eq!(default_country("").unwrap(), None);
        assert!(default_country("XX")
            .unwrap_err()
            .starts_with("defaultCountry \"XX\" is not"));
        assert!(default_country("GBR")
            .unwrap_err()
            .starts_with("defaultCountry \"GBR\" is not"));
        // A real country whose trunk prefix is not 0: refused rather than completed wrong.
        assert!(default_country("RU").unwrap_err().contains("does not know"));
        // Every listed country is a real one.
        for (iso, code) in CALLING_CODES {
            assert!(rust_iso3166::from_alpha2(iso).is_some(), "{iso}");
            assert!(code.bytes().all(|b| b.is_ascii_digit()), "{iso}");
        }
    }
}
