//! The daemon's clocks: monotonic seconds since start, Unix seconds, and
//! the router's local time (TZ, as the C library reads it) for rule
//! schedules; the engine gets all three as `Now`.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::engine::Now;
use crate::policy::config::LocalTime;

pub(super) struct Clock {
    pub(super) start: Instant,
}

impl Clock {
    pub(super) fn now(&self) -> Now {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Now {
            // +1 so that 0 can mean "never" in tables.
            mono: self.start.elapsed().as_secs() + 1,
            unix,
            local: local_time(unix),
        }
    }
}

/// The router's local time now.
pub fn local_time_now() -> LocalTime {
    local_time(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// The router's local time (TZ / /etc/localtime, as the C library reads
/// them; OpenWrt's musl reads /etc/TZ) for rule schedules.
///
/// On 32-bit musl targets the libc crate still declares the old 32-bit
/// `time_t` (deprecated there) and links musl's 32-bit compatibility
/// `localtime_r`, which is correct until 2038; the allow is for that.
#[allow(deprecated)]
pub(crate) fn local_time(unix: u64) -> LocalTime {
    let t = unix as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which outlives the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        let day = unix / 86_400;
        return LocalTime {
            minute_of_day: ((unix % 86_400) / 60) as u16,
            // 1970-01-01 was a Thursday (3 with Monday = 0).
            weekday: ((day + 3) % 7) as u8,
        };
    }
    LocalTime {
        minute_of_day: (tm.tm_hour * 60 + tm.tm_min) as u16,
        // tm_wday: 0 = Sunday.
        weekday: ((tm.tm_wday + 6) % 7) as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" {
        // POSIX; glibc's localtime_r does not re-read TZ by itself.
        fn tzset();
    }

    pub(super) fn set_tz(tz: &str) {
        std::env::set_var("TZ", tz);
        // SAFETY: no other test touches TZ or the C library's zone state.
        unsafe { tzset() };
    }

    /// Also run under qemu for the 32-bit targets, where the C library's
    /// 32-bit compatibility `localtime_r` is the one called.
    #[test]
    pub(super) fn local_time_reads_the_c_librarys_zone() {
        set_tz("UTC0");
        // 1970-01-05 was a Monday.
        let t = local_time(4 * 86_400 + 13 * 3600 + 7 * 60);
        assert_eq!((t.weekday, t.minute_of_day), (0, 13 * 60 + 7));
        set_tz("CET-1");
        let t = local_time(4 * 86_400 + 23 * 3600 + 30 * 60);
        assert_eq!(
            (t.weekday, t.minute_of_day),
            (1, 30),
            "Tuesday 00:30 in CET"
        );
        // 2026-11-26, a Thursday (32-bit time_t holds it until 2038).
        set_tz("UTC0");
        assert_eq!(local_time(1_795_651_200).weekday, 3);
    }
}
