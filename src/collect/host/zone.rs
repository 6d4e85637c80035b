//! The system time zone as Go's `time.Now().Zone()` reports it, for
//! `node_time_zone_offset_seconds{time_zone}`: `TZ` when set (empty = UTC),
//! else /etc/localtime; UTC when neither loads. The offset comes from the
//! notify module's TZif reader; the abbreviation (the label) is the one of
//! the zone's local time types with that offset.

use crate::notify::timeinterval::Location;

/// The system zone, loaded on first use and kept for the life of the process,
/// as Go loads `time.Local` once: node_exporter does not notice a changed
/// /etc/localtime either until it restarts.
struct SystemZone {
    /// `None` when the offset is the first local time type's (an absolute
    /// `TZ` path, which `Location::load` does not take).
    location: Option<Location>,
    /// (UTC offset, abbreviation) of every local time type.
    types: Vec<(i64, String)>,
}

impl SystemZone {
    /// `None` means UTC.
    fn load() -> Option<SystemZone> {
        let (name, data) = match std::env::var("TZ") {
            Ok(tz) => {
                let tz = tz.strip_prefix(':').unwrap_or(&tz).to_string();
                if tz.is_empty() || tz == "UTC" {
                    return None;
                }
                let data = if tz.starts_with('/') {
                    std::fs::read(&tz).ok()
                } else {
                    std::fs::read(format!("/usr/share/zoneinfo/{tz}")).ok()
                };
                (tz, data)
            }
            Err(_) => ("Local".to_string(), std::fs::read("/etc/localtime").ok()),
        };
        let data = data?;
        let location = if name.starts_with('/') {
            None
        } else {
            Location::load(&name).ok()
        };
        Some(SystemZone {
            location,
            types: local_time_types(&data),
        })
    }
}

/// (abbreviation, offset in seconds) at `unix_secs`.
pub fn local_zone(unix_secs: i64) -> (String, i64) {
    static ZONE: std::sync::OnceLock<Option<SystemZone>> = std::sync::OnceLock::new();
    let utc = || ("UTC".to_string(), 0);
    let Some(zone) = ZONE.get_or_init(SystemZone::load) else {
        return utc();
    };
    let offset = match &zone.location {
        Some(l) => l.offset_at(unix_secs),
        None => zone.types.first().map_or(0, |t| t.0),
    };
    match zone.types.iter().find(|t| t.0 == offset) {
        Some((_, abbreviation)) => (abbreviation.clone(), offset),
        None => utc(),
    }
}

/// The (UTC offset, abbreviation) of every local time type of a TZif file
/// (the 64-bit block of version 2+ files), in file order; empty when the data
/// is not TZif.
pub fn local_time_types(data: &[u8]) -> Vec<(i64, String)> {
    let Some(header) = Header::parse(data) else {
        return Vec::new();
    };
    let (block, header) = if header.version >= b'2' {
        match data
            .get(header.v1_len(4)..)
            .and_then(|rest| Some((rest, Header::parse(rest)?)))
        {
            Some((rest, h)) => ((rest, 8usize), h),
            None => return Vec::new(),
        }
    } else {
        ((data, 4usize), header)
    };
    let (bytes, time_size) = block;
    let types_at = 44 + header.timecnt * time_size + header.timecnt;
    let chars_at = types_at + header.typecnt * 6;
    let Some(chars) = bytes.get(chars_at..chars_at + header.charcnt) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(header.typecnt);
    for i in 0..header.typecnt {
        let Some(t) = bytes.get(types_at + i * 6..types_at + i * 6 + 6) else {
            return Vec::new();
        };
        let offset = i64::from(i32::from_be_bytes([t[0], t[1], t[2], t[3]]));
        let start = usize::from(t[5]);
        let abbreviation = chars
            .get(start..)
            .map(|rest| {
                let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                String::from_utf8_lossy(&rest[..end]).into_owned()
            })
            .unwrap_or_default();
        out.push((offset, abbreviation));
    }
    out
}

struct Header {
    version: u8,
    isutcnt: usize,
    isstdcnt: usize,
    leapcnt: usize,
    timecnt: usize,
    typecnt: usize,
    charcnt: usize,
}

impl Header {
    fn parse(data: &[u8]) -> Option<Header> {
        if data.get(..4)? != b"TZif" {
            return None;
        }
        let count = |i: usize| -> Option<usize> {
            let b = data.get(20 + i * 4..24 + i * 4)?;
            Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        };
        Some(Header {
            version: *data.get(4)?,
            isutcnt: count(0)?,
            isstdcnt: count(1)?,
            leapcnt: count(2)?,
            timecnt: count(3)?,
            typecnt: count(4)?,
            charcnt: count(5)?,
        })
    }

    /// Length of the header and data block with `time_size`-byte times.
    fn v1_len(&self, time_size: usize) -> usize {
        44 + self.timecnt * time_size
            + self.timecnt
            + self.typecnt * 6
            + self.charcnt
            + self.leapcnt * (time_size + 4)
            + self.isstdcnt
            + self.isutcnt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_abbreviations_of_a_system_zone() {
        let Ok(data) = std::fs::read("/usr/share/zoneinfo/Europe/Berlin") else {
            return; // no tzdata on this machine
        };
        let types = local_time_types(&data);
        assert!(types.contains(&(3600, "CET".to_string())), "{types:?}");
        assert!(types.contains(&(7200, "CEST".to_string())), "{types:?}");
    }

    #[test]
    fn garbage_is_no_types() {
        assert!(local_time_types(b"TZif2").is_empty());
        assert!(local_time_types(b"not a zone").is_empty());
        let mut data = b"TZif2".to_vec();
        data.resize(44, 0xff);
        assert!(local_time_types(&data).is_empty());
    }
}
