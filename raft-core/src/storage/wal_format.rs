//! The WAL file format, as Ra writes it (`ra_log_wal`, version 1).
//!
//! Key invariant: a record is recoverable only whole — header, checksum, length, index, term and payload
//! — and the checksum (Adler-32 over index, term and payload; 0 = unchecked) is the only thing telling
//! a torn record from a good one. Layout:
//!
//! ```text
//! file    = "RAWA" version:u8(=1) record*
//! record  = header checksum:u32 len:u32 index:u64 term:u64 payload[len]      (big-endian)
//! header  = trunc:1 0:1 ref:22 uid_len:u16 uid[uid_len]   first record of a uid in this file
//!         | trunc:1 1:1 ref:22                             later records (ref cached per file)
//! ```
//! An all-zero record header (ref 0, checksum 0, length 0) marks the end of a pre-allocated file.

use crate::checksum::adler32;
use crate::types::{LogIndex, Term};

/// The file magic.
pub const MAGIC: &[u8; 4] = b"RAWA";
/// The only format version.
pub const VERSION: u8 = 1;
/// Magic plus version.
pub const HEADER_SIZE: usize = 5;
/// Bytes after a failed record that must be zero (or absent) for it to count as the torn last record
/// (Ra's `is_last_record`, 104 bits).
pub const LAST_RECORD_ZEROS: usize = 13;
/// Fixed bytes after the writer header: checksum, length, index, term.
pub const FIXED_BODY: usize = 24;

/// The file header.
pub fn file_header() -> [u8; HEADER_SIZE] {
    [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], VERSION]
}

/// The record checksum (Ra: `erlang:adler32(<<Idx:64, Term:64, Data>>)`).
pub fn record_checksum(index: LogIndex, term: Term, payload: &[u8]) -> u32 {
    adler32(&[&index.0.to_be_bytes(), &term.0.to_be_bytes(), payload])
}

/// Appends one record to `buf`; `uid` is `Some` the first time a writer appears in the file.
/// Returns the number of bytes appended.
#[allow(clippy::too_many_arguments)]
pub fn encode_record(
    buf: &mut Vec<u8>,
    trunc: bool,
    id_ref: u32,
    uid: Option<&[u8]>,
    checksum: u32,
    index: LogIndex,
    term: Term,
    payload: &[u8],
) -> usize {
    assert!(id_ref < (1 << 22), "writer ref {id_ref} does not fit 22 bits");
    let start = buf.len();
    let cached = uid.is_none();
    let bits = (u32::from(trunc) << 23) | (u32::from(cached) << 22) | id_ref;
    buf.extend_from_slice(&bits.to_be_bytes()[1..]);
    if let Some(uid) = uid {
        let len = u16::try_from(uid.len()).expect("uid longer than 65535 bytes");
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(uid);
    }
    buf.extend_from_slice(&checksum.to_be_bytes());
    let len = u32::try_from(payload.len()).expect("payload longer than 4 GiB");
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&index.0.to_be_bytes());
    buf.extend_from_slice(&term.0.to_be_bytes());
    buf.extend_from_slice(payload);
    buf.len() - start
}

/// One parsed record, borrowing from the file contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// The truncate bit: the first write after a snapshot.
    pub trunc: bool,
    /// The per-file writer reference.
    pub id_ref: u32,
    /// The writer's uid, present on its first record in the file.
    pub uid: Option<&'a [u8]>,
    /// The stored checksum (0 = not computed).
    pub checksum: u32,
    /// The entry index.
    pub index: LogIndex,
    /// The entry term.
    pub term: Term,
    /// The payload.
    pub payload: &'a [u8],
    /// Offset just past this record.
    pub end: usize,
}

impl Record<'_> {
    /// Whether the stored checksum matches; a zero checksum passes only when `zero_unchecked` (Ra's
    /// `validate_checksum(0, …)`, right for a WAL written without checksums).
    pub fn checksum_ok(&self, zero_unchecked: bool) -> bool {
        (zero_unchecked && self.checksum == 0) || self.checksum == record_checksum(self.index, self.term, self.payload)
    }
}

/// What lies at an offset of a WAL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A whole record.
    Record(Record<'a>),
    /// The all-zero end marker of a pre-allocated file.
    EndMarker,
    /// Too few bytes for a whole record: a partial tail, ignored by recovery.
    Partial,
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

/// Parses the record at `pos` of `data` (the whole file).
pub fn parse_at(data: &[u8], pos: usize) -> Parsed<'_> {
    let rest = &data[pos.min(data.len())..];
    if rest.len() < 3 {
        return Parsed::Partial;
    }
    let bits = (u32::from(rest[0]) << 16) | (u32::from(rest[1]) << 8) | u32::from(rest[2]);
    let trunc = bits & (1 << 23) != 0;
    let cached = bits & (1 << 22) != 0;
    let id_ref = bits & ((1 << 22) - 1);
    let mut at = 3;
    let uid = if cached {
        None
    } else {
        if rest.len() < at + 2 {
            return Parsed::Partial;
        }
        let len = usize::from(u16::from_be_bytes([rest[at], rest[at + 1]]));
        at += 2;
        if rest.len() < at + len {
            return Parsed::Partial;
        }
        let uid = &rest[at..at + len];
        at += len;
        Some(uid)
    };
    if rest.len() < at + 8 {
        return Parsed::Partial;
    }
    let checksum = be_u32(&rest[at..]);
    let len = be_u32(&rest[at + 4..]) as usize;
    if !cached && !trunc && id_ref == 0 && checksum == 0 && len == 0 {
        return Parsed::EndMarker;
    }
    if rest.len() < at + FIXED_BODY || rest.len() - (at + FIXED_BODY) < len {
        return Parsed::Partial;
    }
    let index = LogIndex(be_u64(&rest[at + 8..]));
    let term = Term(be_u64(&rest[at + 16..]));
    let body = at + FIXED_BODY;
    let payload = &rest[body..body + len];
    Parsed::Record(Record { trunc, id_ref, uid, checksum, index, term, payload, end: pos + body + len })
}

/// Ra's `is_last_record`: after a checksum failure, recovery may drop the record and end the file only
/// if what follows is at least 13 zero bytes or fewer than 13 bytes.
pub fn is_last_record(data: &[u8], after: usize) -> bool {
    let rest = &data[after.min(data.len())..];
    rest.len() < LAST_RECORD_ZEROS || rest[..LAST_RECORD_ZEROS].iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_first_and_cached_records() {
        let mut buf = file_header().to_vec();
        let c = record_checksum(LogIndex(7), Term(2), b"abc");
        encode_record(&mut buf, false, 0, Some(b"uid1"), c, LogIndex(7), Term(2), b"abc");
        let c2 = record_checksum(LogIndex(8), Term(2), b"");
        encode_record(&mut buf, true, 0, None, c2, LogIndex(8), Term(2), b"");
        let Parsed::Record(r) = parse_at(&buf, HEADER_SIZE) else { panic!("not a record") };
        assert_eq!(
            (r.uid, r.index, r.term, r.payload, r.trunc),
            (Some(&b"uid1"[..]), LogIndex(7), Term(2), &b"abc"[..], false)
        );
        assert!(r.checksum_ok(false));
        let Parsed::Record(r2) = parse_at(&buf, r.end) else { panic!("not a record") };
        assert_eq!((r2.uid, r2.index, r2.trunc), (None, LogIndex(8), true));
        assert_eq!(r2.end, buf.len());
        assert_eq!(parse_at(&buf, r2.end), Parsed::Partial);
        assert_eq!(parse_at(&buf[..buf.len() - 1], r.end), Parsed::Partial);
        let zeros = vec![0u8; 40];
        assert_eq!(parse_at(&zeros, 0), Parsed::EndMarker);
        assert!(is_last_record(&zeros, 0) && is_last_record(&buf, buf.len() - 5) && !is_last_record(&buf, HEADER_SIZE));
    }
}
