//! Go's duration syntax, as the ECS agent reads its `*_DURATION` and
//! `*_INTERVAL` settings (`time.ParseDuration`): one or more decimal
//! numbers each with a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), as
//! `3h`, `90m`, `1h30m`, `1.5h`; a bare `0` is zero. No sign: a negative
//! wait means nothing here.

use std::time::Duration;

/// Parse `text`; the error says what is wrong with it.
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration (write e.g. 3h, 90m, 1h30m, 0s)".into());
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration (write e.g. 3h, 90m, 1h30m, 0s)"))?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => {
                return Err(format!(
                    "{text:?}: missing unit after {number} (ns, us, ms, s, m, h)"
                ))
            }
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?} (ns, us, ms, s, m, h)"
                ))
            }
        };
        total += value * seconds;
        rest = next;
    }
    Duration::try_from_secs_f64(total).map_err(|_| format!("{text:?}: out of range"))
}

/// A duration as Go prints the common ones (`3h0m0s` becomes `3h`): for
/// messages and `berth agent`'s effective settings.
pub fn format(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let secs = |s: &str| parse(s).expect(s).as_secs_f64();
        assert_eq!(secs("3h"), 10800.0);
        assert_eq!(secs("90m"), 5400.0);
        assert_eq!(secs("1h30m"), 5400.0);
        assert_eq!(secs("1.5h"), 5400.0);
        assert_eq!(secs("0"), 0.0);
        assert_eq!(secs("0s"), 0.0);
        assert_eq!(secs("1m30s"), 90.0);
        assert_eq!(secs("500ms"), 0.5);
        assert_eq!(secs(" 2s "), 2.0);
    }

    #[test]
    fn bad_durations_say_why() {
        for bad in ["", "3", "h", "3d", "-1h", "1h3", "abc", "1..5s"] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse("3d").unwrap_err().contains("unknown unit \"d\""));
        assert!(parse("3").unwrap_err().contains("missing unit"));
    }

    #[test]
    fn formats_as_go_would() {
        assert_eq!(format(Duration::from_secs(10800)), "3h");
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
    }
}
