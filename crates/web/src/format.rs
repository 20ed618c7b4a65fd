//! Small display helpers for templates.

use chrono::{DateTime, Utc};

/// The workspace's time zone, in which the dashboard shows times (Settings → Time zone). A name
/// PostgreSQL accepts but chrono-tz does not know shows UTC, and says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(chrono_tz::Tz);

impl Zone {
    pub fn new(name: &str) -> Self {
        Zone(name.parse().unwrap_or(chrono_tz::UTC))
    }

    /// The zone of the signed-in user's workspace.
    pub fn of(user: &crate::session::CurrentUser) -> Self {
        Zone::new(&user.ctx.time_zone)
    }

    /// "2026-12-05 02:23:45 CET": the time in the zone, with the zone's abbreviation.
    pub fn absolute(self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.0)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }

    /// "14:05": the time of day in the zone, with the date when it is not today there, and the
    /// zone's abbreviation ("14:05 CET", "2026-12-06 14:05 CET").
    pub fn clock(self, t: DateTime<Utc>) -> String {
        let local = t.with_timezone(&self.0);
        if local.date_naive() == Utc::now().with_timezone(&self.0).date_naive() {
            local.format("%H:%M %Z").to_string()
        } else {
            local.format("%Y-%m-%d %H:%M %Z").to_string()
        }
    }

    /// "just now", "3 minutes ago", "2 hours ago", "5 days ago", or the date in the zone.
    pub fn relative(self, t: DateTime<Utc>) -> String {
        self.relative_to(t, Utc::now())
    }

    pub fn relative_to(self, t: DateTime<Utc>, now: DateTime<Utc>) -> String {
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
            _ => t.with_timezone(&self.0).format("%b %-d, %Y").to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Zone;
    use chrono::{Duration, TimeZone, Utc};

    #[test]
    fn clock_times_are_in_the_workspace_zone() {
        let z = Zone::new("Europe/Berlin");
        let t = Utc::now();
        let local = t.with_timezone(&chrono_tz::Europe::Berlin);
        assert_eq!(z.clock(t), local.format("%H:%M %Z").to_string());
        let later = t + Duration::days(3);
        assert!(
            z.clock(later).starts_with(
                &later
                    .with_timezone(&chrono_tz::Europe::Berlin)
                    .format("%Y-%m-%d")
                    .to_string()
            ),
            "another day shows its date"
        );
    }

    #[test]
    fn relative_times_read_like_a_person_would_say_them() {
        let z = Zone::new("UTC");
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        assert_eq!(z.relative_to(now - Duration::seconds(5), now), "just now");
        assert_eq!(
            z.relative_to(now - Duration::minutes(3), now),
            "3 minutes ago"
        );
        assert_eq!(
            z.relative_to(now - Duration::minutes(1), now),
            "1 minute ago"
        );
        assert_eq!(z.relative_to(now - Duration::hours(2), now), "2 hours ago");
        assert_eq!(z.relative_to(now - Duration::days(4), now), "4 days ago");
        assert_eq!(z.relative_to(now - Duration::days(90), now), "Aug 25, 2026");
    }

    #[test]
    fn times_are_shown_in_the_workspace_zone_with_the_zone() {
        let t = Utc.with_ymd_and_hms(2026, 12, 4, 23, 30, 0).unwrap();
        assert_eq!(Zone::new("UTC").absolute(t), "2026-12-04 23:30:00 UTC");
        assert_eq!(
            Zone::new("Europe/Berlin").absolute(t),
            "2026-12-05 00:30:00 CET"
        );
        assert_eq!(
            Zone::new("America/New_York").absolute(t),
            "2026-12-04 18:30:00 EST"
        );
        // The date of an old time is the zone's date too.
        let now = t + Duration::days(60);
        assert_eq!(
            Zone::new("Europe/Berlin").relative_to(t, now),
            "Dec 5, 2026"
        );
        assert_eq!(Zone::new("Not/A_Zone"), Zone::new("UTC"));
    }
}
