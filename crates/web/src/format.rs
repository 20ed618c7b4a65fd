//! Small display helpers for templates.

use chrono::{DateTime, Utc};

/// "just now", "3 minutes ago", "2 hours ago", "5 days ago", or a date.
pub fn relative(t: DateTime<Utc>) -> String {
    relative_to(t, Utc::now())
}

pub fn relative_to(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit} ago")
        } else {
            format!("{n} {unit}s ago")
        }
    };
    match secs {
        s if s < 60 => "just now".into(),
        s if s < 3600 => plural(s / 60, "minute"),
        s if s < 86_400 => plural(s / 3600, "hour"),
        s if s < 30 * 86_400 => plural(s / 86_400, "day"),
        _ => t.format("%b %-d, %Y").to_string(),
    }
}

pub fn absolute(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::relative_to;
    use chrono::{Duration, TimeZone, Utc};

    #[test]
    fn relative_times_read_like_a_person_would_say_them() {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        assert_eq!(relative_to(now - Duration::seconds(5), now), "just now");
        assert_eq!(
            relative_to(now - Duration::minutes(3), now),
            "3 minutes ago"
        );
        assert_eq!(relative_to(now - Duration::minutes(1), now), "1 minute ago");
        assert_eq!(relative_to(now - Duration::hours(2), now), "2 hours ago");
        assert_eq!(relative_to(now - Duration::days(4), now), "4 days ago");
        assert_eq!(relative_to(now - Duration::days(90), now), "Aug 25, 2026");
    }
}
