//! `replica.origin`: the file that makes a data dir a replica. It names the stream the
//! replica applies and, once the first event arrived, the store id of the origin that
//! stream carries, so one replica is never fed from two origins. Every open reads it: a
//! replica stays a replica whoever opens it.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::{write_atomic, Storage};

/// File name of the replica marker inside a data dir.
pub const REPLICA_ORIGIN_FILE: &str = "replica.origin";
const FIRST_LINE: &str = "eventpak replica 1";
/// Longest stream name accepted (JetStream's own limit is lower).
const MAX_STREAM_BYTES: usize = 255;

/// What a replica applies: a stream, and the origin store its events come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaOrigin {
    /// The name of the stream the replica applies.
    pub stream: String,
    /// The origin's store id, fixed by the first event applied.
    pub origin_store_id: Option<[u8; 16]>,
}

impl ReplicaOrigin {
    /// True when `data_dir` is a replica's.
    pub fn exists(data_dir: &Path) -> bool {
        data_dir.join(REPLICA_ORIGIN_FILE).is_file()
    }

    /// Reads the marker; `None` when the data dir is not a replica's.
    pub fn load(data_dir: &Path) -> Result<Option<Self>> {
        let path = data_dir.join(REPLICA_ORIGIN_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::storage("reading replica.origin", e)),
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| Error::corrupt(&path, 0, "not UTF-8 text"))?;
        Self::decode(text).map(Some).map_err(|reason| Error::corrupt(&path, 0, reason))
    }

    fn decode(text: &str) -> std::result::Result<Self, String> {
        let mut lines = text.lines();
        if lines.next() != Some(FIRST_LINE) {
            return Err("not a replica.origin file of version 1".into());
        }
        let stream = lines.next().and_then(|l| l.strip_prefix("stream ")).ok_or("no stream line")?;
        let origin = lines.next().and_then(|l| l.strip_prefix("origin ")).ok_or("no origin line")?;
        if lines.next().is_some() {
            return Err("trailing lines".into());
        }
        check_stream_name(stream).map_err(|e| e.to_string())?;
        let origin_store_id = match origin {
            "-" => None,
            hex => Some(parse_hex_id(hex).ok_or("origin is not 32 hex digits")?),
        };
        Ok(ReplicaOrigin { stream: stream.to_owned(), origin_store_id })
    }

    /// Writes the marker atomically (temp file, fsync, rename, directory fsync).
    pub fn save(&self, storage: &dyn Storage, data_dir: &Path) -> Result<()> {
        let origin = match self.origin_store_id {
            Some(id) => id.iter().map(|b| format!("{b:02x}")).collect(),
            None => "-".to_owned(),
        };
        let text = format!("{FIRST_LINE}\nstream {}\norigin {origin}\n", self.stream);
        write_atomic(storage, data_dir, REPLICA_ORIGIN_FILE, text.as_bytes())
            .map_err(|e| Error::storage("writing replica.origin", e))
    }
}

/// A stream name is 1-255 printable bytes without spaces (what a marker line can hold).
pub fn check_stream_name(stream: &str) -> Result<()> {
    let printable = stream.bytes().all(|b| b.is_ascii_graphic() || b >= 0x80);
    if stream.is_empty() || stream.len() > MAX_STREAM_BYTES || !printable {
        return Err(Error::InvalidConfig(format!(
            "replica stream name {stream:?} must be 1-{MAX_STREAM_BYTES} bytes with no spaces or control characters"
        )));
    }
    Ok(())
}

fn parse_hex_id(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ReplicaOrigin::load(dir.path()).unwrap(), None);
        let mut origin = ReplicaOrigin { stream: "EVENTS".into(), origin_store_id: None };
        origin.save(&crate::io::OsStorage, dir.path()).unwrap();
        assert_eq!(ReplicaOrigin::load(dir.path()).unwrap().as_ref(), Some(&origin));
        origin.origin_store_id = Some([0xab; 16]);
        origin.save(&crate::io::OsStorage, dir.path()).unwrap();
        assert_eq!(ReplicaOrigin::load(dir.path()).unwrap(), Some(origin));
        std::fs::write(dir.path().join(REPLICA_ORIGIN_FILE), "eventpak replica 1\nstream A\norigin zz\n")
            .unwrap();
        assert!(matches!(ReplicaOrigin::load(dir.path()), Err(Error::CorruptSegment { .. })));
        assert!(check_stream_name("has space").is_err() && check_stream_name("").is_err());
    }
}
