//! ISO 3166 look-ups: country name ↔ alpha-2 code, and US state name ↔ state code.

/// Common names that differ from the ISO short names ("United States" for the seed's example).
const COUNTRY_ALIASES: &[(&str, &str)] = &[
    ("united states", "US"),
    ("usa", "US"),
    ("u.s.", "US"),
    ("u.s.a.", "US"),
    ("america", "US"),
    ("united kingdom", "GB"),
    ("uk", "GB"),
    ("great britain", "GB"),
    ("england", "GB"),
    ("russia", "RU"),
    ("south korea", "KR"),
    ("korea", "KR"),
    ("north korea", "KP"),
    ("iran", "IR"),
    ("vietnam", "VN"),
    ("syria", "SY"),
    ("laos", "LA"),
    ("bolivia", "BO"),
    ("venezuela", "VE"),
    ("tanzania", "TZ"),
    ("moldova", "MD"),
    ("taiwan", "TW"),
    ("czech republic", "CZ"),
    ("netherlands", "NL"),
    ("the netherlands", "NL"),
    ("turkey", "TR"),
    ("ivory coast", "CI"),
    ("macedonia", "MK"),
    ("uae", "AE"),
];

/// Display names for codes whose ISO short name is not what people write.
const DISPLAY_NAMES: &[(&str, &str)] = &[
    ("US", "United States"),
    ("GB", "United Kingdom"),
    ("RU", "Russia"),
    ("KR", "South Korea"),
    ("KP", "North Korea"),
    ("IR", "Iran"),
    ("VN", "Vietnam"),
    ("SY", "Syria"),
    ("LA", "Laos"),
    ("BO", "Bolivia"),
    ("VE", "Venezuela"),
    ("TZ", "Tanzania"),
    ("MD", "Moldova"),
    ("TW", "Taiwan"),
    ("NL", "Netherlands"),
    ("CZ", "Czechia"),
];

/// The alpha-2 code for a code (alpha-2 or alpha-3, any case), if it is one.
pub fn country_code(code: &str) -> Option<&'static str> {
    let upper = code.trim().to_ascii_uppercase();
    match upper.len() {
        2 => rust_iso3166::from_alpha2(&upper).map(|c| c.alpha2),
        3 => rust_iso3166::from_alpha3(&upper).map(|c| c.alpha2),
        _ => None,
    }
}

/// The name to show for an alpha-2 code.
pub fn country_name(alpha2: &str) -> Option<&'static str> {
    if let Some((_, name)) = DISPLAY_NAMES.iter().find(|(c, _)| *c == alpha2) {
        return Some(name);
    }
    rust_iso3166::from_alpha2(alpha2).map(|c| c.name)
}

/// The alpha-2 code for a country name (ISO short name or a common alias, any case).
pub fn country_code_for_name(name: &str) -> Option<&'static str> {
    let wanted = name.trim().to_lowercase();
    if wanted.is_empty() {
        return None;
    }
    if let Some((_, code)) = COUNTRY_ALIASES.iter().find(|(n, _)| *n == wanted) {
        return Some(code);
    }
    if let Some((code, _)) = DISPLAY_NAMES
        .iter()
        .find(|(_, n)| n.to_lowercase() == wanted)
    {
        return Some(code);
    }
    rust_iso3166::ALL
        .iter()
        .find(|c| c.name.to_lowercase() == wanted)
        .map(|c| c.alpha2)
}

fn us_states() -> &'static [rust_iso3166::iso3166_2::Subdivision] {
    rust_iso3166::US.subdivisions().unwrap_or(&[])
}

/// `FL` → `Florida` (US only).
pub fn us_state_name(code: &str) -> Option<String> {
    let wanted = format!("US-{}", code.trim().to_ascii_uppercase());
    us_states()
        .iter()
        .find(|s| s.code == wanted)
        .map(|s| s.name.to_owned())
}

/// `Florida` → `FL` (US only).
pub fn us_state_code(name: &str) -> Option<String> {
    let wanted = name.trim().to_lowercase();
    us_states()
        .iter()
        .find(|s| s.name.to_lowercase() == wanted)
        .map(|s| s.code.trim_start_matches("US-").to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_and_states_fill_each_other() {
        assert_eq!(country_code_for_name("United States"), Some("US"));
        assert_eq!(country_code_for_name("germany"), Some("DE"));
        assert_eq!(country_name("US"), Some("United States"));
        assert_eq!(country_name("FR"), Some("France"));
        assert_eq!(country_code("usa"), Some("US"));
        assert_eq!(country_code("de"), Some("DE"));
        assert_eq!(country_code("XX"), None);
        assert_eq!(us_state_name("fl").as_deref(), Some("Florida"));
        assert_eq!(us_state_code("Florida").as_deref(), Some("FL"));
        assert_eq!(us_state_code("Atlantis"), None);
    }
}
