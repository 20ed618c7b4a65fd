//! Numbers as people read them: thousands separators, and money with the currency's symbol and
//! its minor units (ISO 4217: JPY and KRW have none, BHD, KWD, OMR, JOD, TND, IQD, LYD three).

/// 1234567 → "1,234,567".
pub fn count(n: i64) -> String {
    postback_domain::text::thousands(n)
}

/// Digits after the decimal point of the currency (ISO 4217 "minor unit").
pub fn minor_units(currency: &str) -> usize {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// The symbol written before the amount, for the common currencies.
fn symbol(currency: &str) -> Option<&'static str> {
    Some(match currency {
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        "JPY" => "¥",
        "CNY" => "CN¥",
        "INR" => "₹",
        "KRW" => "₩",
        "BRL" => "R$",
        "CAD" => "CA$",
        "AUD" => "A$",
        "NZD" => "NZ$",
        "MXN" => "MX$",
        "HKD" => "HK$",
        "ILS" => "₪",
        "VND" => "₫",
        "PHP" => "₱",
        "TRY" => "₺",
        "UAH" => "₴",
        "NGN" => "₦",
        "PLN" => "zł\u{a0}",
        "CHF" => "CHF\u{a0}",
        "SEK" => "SEK\u{a0}",
        "NOK" => "NOK\u{a0}",
        "DKK" => "DKK\u{a0}",
        _ => return None,
    })
}

/// 1234.5 USD → "$1,234.50"; -3 EUR → "-€3.00"; 1200 JPY → "¥1,200"; 5 XYZ → "5.00 XYZ".
pub fn money(amount: f64, currency: &str) -> String {
    let digits = minor_units(currency);
    let scale = 10f64.powi(digits as i32);
    let minor = (amount.abs() * scale).round();
    let whole = (minor / scale).trunc() as i64;
    let frac = (minor - whole as f64 * scale).round() as i64;
    let mut number = count(whole);
    if digits > 0 {
        number.push('.');
        number.push_str(&format!("{frac:0digits$}"));
    }
    let sign = if amount < 0.0 && minor > 0.0 { "-" } else { "" };
    match symbol(currency) {
        Some(s) => format!("{sign}{s}{number}"),
        None => format!("{sign}{number} {currency}"),
    }
}

/// An optional value: the money, or "—".
pub fn maybe_money(amount: Option<f64>, currency: &str) -> String {
    amount.map_or_else(|| "—".to_owned(), |a| money(a, currency))
}

/// "+12%", "−40%", "new" (nothing before), or "±0%".
pub fn change(now: f64, before: f64) -> String {
    if before == 0.0 {
        return if now == 0.0 {
            "±0%".into()
        } else {
            "new".into()
        };
    }
    let pct = ((now - before) / before * 100.0).round() as i64;
    match pct {
        0 => "±0%".into(),
        p if p > 0 => format!("+{}%", count(p)),
        p => format!("−{}%", count(-p)),
    }
}

#[cfg(test)]
mod tests {
    use super::{change, money};

    #[test]
    fn money_has_symbol_separators_and_minor_units() {
        assert_eq!(money(139.8, "USD"), "$139.80");
        assert_eq!(money(1234567.891, "EUR"), "€1,234,567.89");
        assert_eq!(money(1200.0, "JPY"), "¥1,200");
        assert_eq!(money(1.2346, "KWD"), "1.235 KWD");
        assert_eq!(money(-3.0, "GBP"), "-£3.00");
        assert_eq!(money(0.005, "USD"), "$0.01");
        assert_eq!(money(5.0, "XYZ"), "5.00 XYZ");
    }

    #[test]
    fn changes_read_as_percentages() {
        assert_eq!(change(12.0, 10.0), "+20%");
        assert_eq!(change(5.0, 10.0), "−50%");
        assert_eq!(change(3.0, 0.0), "new");
        assert_eq!(change(0.0, 0.0), "±0%");
    }
}
