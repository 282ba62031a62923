//! Seeded corruption of the three kinds of storage files — a WAL file, a segment file and
//! `writers.snapshot` — each produced by the real actors, corrupted once per case (1,000 cases per file
//! kind, fixed seeds), then booted and/or read.
//!
//! What must hold: nothing panics; every outcome is `Ok` or one of the typed errors Ra also stops with;
//! data that is accepted is the data that was written, except through the channels Ra's formats leave
//! unchecked, which are named and counted (a WAL record whose stored checksum is 0 is not validated; a
//! WAL record's writer reference and a segment's index records are covered by no checksum at all).
//! Outcome classes are counted and must all be non-empty, so no test here can pass vacuously.
//!
//! `SimFs` is not `Clone`: each case rebuilds the disk from the pristine image's file contents.

mod common;

use std::collections::BTreeMap;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};

use common::*;
use raft_core::storage::StorageError;
use raft_core::storage::messages::WalMsg;
use raft_core::storage::segment::{HEADER_SIZE, INDEX_RECORD_SIZE, SegmentError, SegmentReader, parse_index};
use raft_core::storage::wal::WriterSeq;
use raft_core::storage::wal_format::{self, Parsed};
use raft_core::{Bugs, LogIndex, Uid};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use vfs::{CrashModel, FileKind, FileSystem, OpenOptions, SimFs};

const CASES: u64 = 1000;
const SEGMENT_MAX_COUNT: u16 = 32;

/// Every directory and file of a disk, with file contents.
#[derive(Clone, Debug, Default)]
struct Image {
    dirs: Vec<String>,
    files: BTreeMap<String, Vec<u8>>,
}

fn capture(fs: &mut SimFs) -> Image {
    fn walk(fs: &mut SimFs, dir: &str, image: &mut Image) {
        let list = if dir.is_empty() { "." } else { dir };
        for name in fs.read_dir(list).unwrap() {
            let path = if dir.is_empty() { name } else { format!("{dir}/{name}") };
            if fs.metadata(&path).unwrap().kind == FileKind::Dir {
                image.dirs.push(path.clone());
                walk(fs, &path, image);
            } else {
                let bytes = fs.read_file(&path).unwrap();
                image.files.insert(path, bytes);
            }
        }
    }
    let mut image = Image::default();
    walk(fs, "", &mut image);
    image
}

/// A fresh, fully durable disk holding `image`, with `path` replaced by `bytes`.
fn build(seed: u64, image: &Image, path: &str, bytes: &[u8]) -> SimFs {
    let mut fs = sim_fs(seed);
    for d in &image.dirs {
        fs.mkdir_all(d).unwrap();
    }
    for (p, contents) in &image.files {
        let contents = if p == path { bytes } else { contents };
        let fd = fs.open(p, &OpenOptions::create_truncate()).unwrap();
        if !contents.is_empty() {
            assert_eq!(fs.pwrite(fd, 0, contents).unwrap(), contents.len());
        }
        fs.close(fd).unwrap();
    }
    fs.sync().unwrap();
    fs
}

fn payload(uid: &str, index: u64, term: u64) -> Vec<u8> {
    format!("{uid}:{index}@{term}").into_bytes()
}

type Written = BTreeMap<Uid, BTreeMap<u64, (u64, Vec<u8>)>>;

fn new_node(seed: u64, bugs: Bugs) -> Node {
    Node::new(seed, wal_config(1 << 20, bugs), segment_writer_config(SEGMENT_MAX_COUNT))
}

/// A node whose current WAL file holds records of two interleaved writers (a term change included),
/// after a power cut that kept everything: the WAL file is not yet flushed to segments.
fn wal_image() -> (Image, String, Written) {
    let mut n = new_node(1, Bugs::none());
    n.boot_and_recover().unwrap();
    let mut a = Writer::start(&mut n, "s1", 1);
    let mut b = Writer::start(&mut n, "s2", 2);
    let mut written = Written::new();
    let mut write = |n: &mut Node, w: &mut Writer, i: u64, t: u64| {
        let p = payload(w.uid.as_str(), i, t);
        w.write(n, i, t, &p);
        written.entry(w.uid.clone()).or_default().insert(i, (t, p));
    };
    for i in 1..=20 {
        write(&mut n, &mut a, i, 1);
        write(&mut n, &mut b, i, 1);
        if i % 5 == 0 {
            n.run();
        }
    }
    for i in 21..=25 {
        write(&mut n, &mut a, i, 2);
    }
    n.run();
    let path = wal_path(1);
    assert!(n.wal_files().contains(&"0000000000000001.wal".to_owned()));
    n.power_loss(CrashModel::NoLoss);
    (capture(&mut n.fs), path, written)
}

/// `s1`'s first segment (1..20) after a flush, plus 21..25 in the current WAL file.
fn segment_image() -> (Image, String) {
    let mut n = new_node(2, Bugs::none());
    n.boot_and_recover().unwrap();
    let mut w = Writer::start(&mut n, "s1", 1);
    for i in 1..=20 {
        w.write(&mut n, i, 1, &payload("s1", i, 1));
    }
    n.send_wal(WalMsg::ForceRollOver);
    n.run();
    for i in 21..=25 {
        w.write(&mut n, i, 1, &payload("s1", i, 1));
    }
    n.run();
    n.power_loss(CrashModel::NoLoss);
    (capture(&mut n.fs), "s1/0000000000000001.segment".to_owned())
}

/// A flushed WAL file (so `writers.snapshot` holds `s1 -> InSeq(10)`) and an empty current WAL file.
fn writers_snapshot_image() -> (Image, String) {
    let mut n = new_node(3, Bugs::none());
    n.boot_and_recover().unwrap();
    let mut w = Writer::start(&mut n, "s1", 1);
    for i in 1..=10 {
        w.write(&mut n, i, 1, &payload("s1", i, 1));
    }
    n.send_wal(WalMsg::ForceRollOver);
    n.run();
    n.power_loss(CrashModel::NoLoss);
    (capture(&mut n.fs), "wal/writers.snapshot".to_owned())
}

/// One corruption: the new bytes, the byte range it touched in the original (for truncation: from the
/// cut to the end), and a description.
struct Corrupted {
    bytes: Vec<u8>,
    touched: Range<usize>,
    what: String,
}

fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

/// Applies one random corruption. `header` is the file's header size; `index` (segments only) is the
/// byte range of its index region.
fn corrupt(rng: &mut ChaCha8Rng, original: &[u8], header: usize, index: Option<Range<usize>>) -> Corrupted {
    let len = original.len();
    let mut bytes = original.to_vec();
    let kinds = if index.is_some() { 7 } else { 6 };
    match below(rng, kinds) {
        0 => {
            let magic_len = 4.min(len);
            for b in &mut bytes[..magic_len] {
                *b = rng.next_u32() as u8;
            }
            if bytes[..magic_len] == original[..magic_len] {
                bytes[0] ^= 0x80;
            }
            Corrupted { bytes, touched: 0..magic_len, what: "bad magic".into() }
        }
        1 => {
            let cut = below(rng, header);
            bytes.truncate(cut);
            Corrupted { bytes, touched: cut..len, what: format!("short header: truncated to {cut}") }
        }
        2 => {
            let flips = 1 + below(rng, 8);
            let mut lo = len;
            let mut hi = 0;
            for _ in 0..flips {
                let at = below(rng, len);
                bytes[at] ^= 1 << below(rng, 8);
                lo = lo.min(at);
                hi = hi.max(at + 1);
            }
            Corrupted { bytes, touched: lo..hi, what: format!("{flips} bit flips in {lo}..{hi}") }
        }
        3 => {
            let run = 1 + below(rng, 32);
            let at = below(rng, len);
            let end = (at + run).min(len);
            for b in &mut bytes[at..end] {
                *b = rng.next_u32() as u8;
            }
            Corrupted { bytes, touched: at..end, what: format!("random bytes at {at}..{end}") }
        }
        4 => {
            let cut = header + below(rng, len - header);
            bytes.truncate(cut);
            Corrupted { bytes, touched: cut..len, what: format!("truncated to {cut}") }
        }
        5 => {
            let run = 1 + below(rng, 64);
            let at = below(rng, len);
            let end = (at + run).min(len);
            bytes[at..end].fill(0);
            Corrupted { bytes, touched: at..end, what: format!("zeroed {at}..{end}") }
        }
        _ => {
            // Garbage index records: random, erased-flash (all 0xFF), or plausible-looking ones.
            let region = index.expect("segments only");
            let slots = (region.end - region.start) / INDEX_RECORD_SIZE as usize;
            let count = 1 + below(rng, 4);
            let style = below(rng, 3);
            let mut lo = len;
            let mut hi = 0;
            for _ in 0..count {
                // Mostly slots in use or just past them (the pristine segment uses 20).
                let slot = below(rng, 24.min(slots));
                let at = region.start + slot * INDEX_RECORD_SIZE as usize;
                let rec: Vec<u8> = match style {
                    0 => (0..32).map(|_| rng.next_u32() as u8).collect(),
                    1 => vec![0xFF; 32],
                    _ => {
                        let mut r = Vec::new();
                        r.extend_from_slice(&(rng.next_u64() % 40).to_be_bytes());
                        r.extend_from_slice(&(rng.next_u64() % 3).to_be_bytes());
                        r.extend_from_slice(&(rng.next_u64() % (len as u64 + 64)).to_be_bytes());
                        r.extend_from_slice(&(rng.next_u32() % 40).to_be_bytes());
                        r.extend_from_slice(&(if rng.next_u32() & 1 == 0 { 0 } else { rng.next_u32() }).to_be_bytes());
                        r
                    }
                };
                bytes[at..at + 32].copy_from_slice(&rec);
                lo = lo.min(at);
                hi = hi.max(at + 32);
            }
            let style = ["random", "0xFF", "plausible"][style];
            Corrupted { bytes, touched: lo..hi, what: format!("{count} {style} index records in {lo}..{hi}") }
        }
    }
}

/// Runs `f`, turning a panic into a test failure that names the case.
fn no_panic<T>(case: u64, what: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            panic!("case {case} ({what}) panicked: {msg}")
        }
    }
}

/// Boots a node on `fs` with the given uids registered but not running.
fn boot(seed: u64, bugs: Bugs, fs: SimFs, uids: &[&str]) -> (Node, Result<(), StorageError>) {
    let mut n = new_node(seed, bugs);
    n.fs = fs;
    for u in uids {
        n.register(&Uid::new(u), None);
    }
    let result = n.boot_and_recover();
    (n, result)
}

/// Whether an error is one a corrupt file may legitimately stop an actor with.
fn typed(e: &StorageError) -> bool {
    matches!(
        e,
        StorageError::UnknownWalFileFormat { .. }
            | StorageError::WalChecksumValidationFailure { .. }
            | StorageError::GapDetected { .. }
            | StorageError::MissingIndex { .. }
            | StorageError::Segment(SegmentError::InvalidFormat { .. } | SegmentError::MissingHeader { .. })
            | StorageError::Segment(SegmentError::CrcMismatch { .. } | SegmentError::UnexpectedEof { .. })
    )
}

/// An owned WAL record as the recovery walk sees it.
#[derive(Debug)]
struct WalRecord {
    uid: Option<Uid>,
    index: u64,
    term: u64,
    payload: Vec<u8>,
    checksum: u32,
    checksum_ok: bool,
}

/// The records recovery walks over (it visits exactly these positions, stopping where this stops),
/// with each record's writer resolved through the per-file reference cache.
fn walk_wal(data: &[u8]) -> Vec<WalRecord> {
    let mut out = Vec::new();
    if data.len() < wal_format::HEADER_SIZE || data[..wal_format::HEADER_SIZE] != wal_format::file_header() {
        return out;
    }
    let mut cache: BTreeMap<u32, Uid> = BTreeMap::new();
    let mut pos = wal_format::HEADER_SIZE;
    while let Parsed::Record(r) = wal_format::parse_at(data, pos) {
        let uid = match r.uid {
            Some(bytes) => {
                let uid = Uid(String::from_utf8_lossy(bytes).into_owned());
                cache.insert(r.id_ref, uid.clone());
                Some(uid)
            }
            None => cache.get(&r.id_ref).cloned(),
        };
        out.push(WalRecord {
            uid,
            index: r.index.0,
            term: r.term.0,
            payload: r.payload.to_vec(),
            checksum: r.checksum,
            checksum_ok: r.checksum_ok(false),
        });
        pos = r.end;
    }
    out
}

#[derive(Debug, Default)]
struct WalOutcomes {
    ok_intact: u64,
    ok_partial: u64,
    unknown_format: u64,
    checksum_failure: u64,
    gap_detected: u64,
    missing_index: u64,
    /// Accepted entries that differ from what was written, by channel: (case, uid, index, what).
    unchecked_record: Vec<(u64, String, u64, String)>,
    misattributed: Vec<(u64, String, u64, String)>,
    adler_collision: Vec<(u64, String, u64, String)>,
}

/// Boots `CASES` corrupted copies of the WAL image under `bugs` and sorts what recovery did.
fn wal_outcomes(bugs: Bugs) -> WalOutcomes {
    let (image, path, written) = wal_image();
    let original = image.files[&path].clone();
    let mut rng = ChaCha8Rng::seed_from_u64(0x3a1_0001);
    let mut o = WalOutcomes::default();
    for case in 0..CASES {
        let c = corrupt(&mut rng, &original, wal_format::HEADER_SIZE, None);
        let fs = build(case, &image, &path, &c.bytes);
        let (mut n, result) = no_panic(case, &c.what, || boot(case, bugs.clone(), fs, &["s1", "s2"]));
        match &result {
            Ok(()) => {}
            Err(e) => {
                assert!(typed(e), "case {case} ({}): untyped error {e:?}", c.what);
                match e {
                    StorageError::UnknownWalFileFormat { .. } => o.unknown_format += 1,
                    StorageError::WalChecksumValidationFailure { .. } => o.checksum_failure += 1,
                    StorageError::GapDetected { .. } => o.gap_detected += 1,
                    StorageError::MissingIndex { .. } => o.missing_index += 1,
                    other => panic!("case {case} ({}): {other:?} from a WAL file", c.what),
                }
                continue;
            }
        }
        // Recovery succeeded: every entry now in a segment must be one that was written.
        let records = walk_wal(&c.bytes);
        let mut intact = true;
        for (uid, want) in &written {
            let got = no_panic(case, &c.what, || segment_contents(&mut n, uid));
            if got.len() != want.len() {
                intact = false;
            }
            for (i, (t, d)) in &got {
                if want.get(i) == Some(&(*t, d.clone())) {
                    continue;
                }
                intact = false;
                // Which record produced it?
                let from: Vec<&WalRecord> = records
                    .iter()
                    .filter(|r| r.index == *i && r.term == *t && &r.payload == d && r.uid.as_ref() == Some(uid))
                    .collect();
                let entry = (case, uid.as_str().to_owned(), *i, c.what.clone());
                let written_for_other =
                    written.iter().any(|(u, m)| u != uid && m.get(i).is_some_and(|(wt, wd)| wt == t && wd == d));
                if from.iter().any(|r| r.checksum == 0) {
                    o.unchecked_record.push(entry);
                } else if from.iter().any(|r| r.checksum_ok) && written_for_other {
                    o.misattributed.push(entry);
                } else if from.iter().any(|r| r.checksum_ok) {
                    o.adler_collision.push(entry);
                } else {
                    panic!("case {case} ({}): unexplained wrong entry {uid} {i}: term {t} {d:?}", c.what);
                }
            }
        }
        if intact {
            o.ok_intact += 1;
        } else {
            o.ok_partial += 1;
        }
    }
    assert_eq!(
        o.ok_intact + o.ok_partial + o.unknown_format + o.checksum_failure + o.gap_detected + o.missing_index,
        CASES
    );
    o
}

#[test]
fn corrupt_wal_files() {
    // Ra refuses to boot on a record that fails its checksum unless zeros follow it
    // (`wal-garbage-tail-fatal`); raft-core ends recovery there, keeping the records before it (a power
    // cut damages only the unsynced last batch; damage to synced records loses what follows).
    let ra = wal_outcomes(Bugs::of(&[raft_core::Bug::WalGarbageTailFatal]));
    let o = wal_outcomes(Bugs::none());
    assert!(ra.checksum_failure > 0, "{ra:?}");
    assert_eq!(o.checksum_failure, 0, "{o:?}");
    // Every boot Ra refused with a checksum failure, raft-core completed, keeping a prefix.
    assert_eq!(o.ok_intact + o.ok_partial, ra.ok_intact + ra.ok_partial + ra.checksum_failure, "{o:?} {ra:?}");
    for o in [&ra, &o] {
        assert!(o.ok_intact > 0 && o.ok_partial > 0, "{o:?}");
        assert!(o.unknown_format > 0, "{o:?}");
        // Adler-32 never let a corrupted record through with a non-zero checksum under these seeds; if this
        // fails, a collision was found: report it, do not hide it.
        assert!(o.adler_collision.is_empty(), "Adler-32 collisions: {:?}", o.adler_collision);
        // Ra does not validate a record whose stored checksum is 0 (`validate_checksum(0, ...) -> true`): a
        // zeroed range over a record's checksum and length would be accepted as an empty entry (its index
        // often zeroed too). With the fix (the switch `wal-zero-checksum-unchecked` off) a WAL that computes
        // checksums verifies a zero like any other, so no zeroed record gets through.
        assert!(o.unchecked_record.is_empty(), "{o:?}");
    }
}

#[derive(Debug, Default)]
struct SegmentOutcomes {
    open_ok: u64,
    open_missing_header: u64,
    open_invalid: u64,
    reads_correct: u64,
    reads_absent: u64,
    reads_crc: u64,
    reads_eof: u64,
    /// Wrong (term, data) served: only possible when the header or index region was touched (index
    /// records carry no checksum). (case, index, what)
    reads_wrong: Vec<(u64, u64, String)>,
    boot_ok: u64,
    boot_errors: BTreeMap<String, u64>,
    /// Boots that succeeded (and deleted the WAL file) with some of the flushed entries unreadable:
    /// (case, entries lost, what).
    appended_lost: Vec<(u64, usize, String)>,
}

/// Whether the segment's index (as its own header sizes it) has an all-zero record followed by a
/// non-zero one.
/// Whether the corrupt index's last record points the next append below the data region (into the
/// index or the header): Ra appends there unchecked, destroying index records or the header.
fn index_points_below_data(bytes: &[u8]) -> bool {
    if bytes.len() < HEADER_SIZE as usize {
        return false;
    }
    let max_count = u16::from_be_bytes([bytes[6], bytes[7]]) as usize;
    let data_start = (HEADER_SIZE as usize + max_count * INDEX_RECORD_SIZE as usize) as u64;
    let end = (data_start as usize).min(bytes.len());
    let parsed = parse_index(&bytes[HEADER_SIZE as usize..end], data_start);
    parsed.data_offset < data_start
}

fn index_has_hole(bytes: &[u8]) -> bool {
    if bytes.len() < HEADER_SIZE as usize {
        return false;
    }
    let max_count = u16::from_be_bytes([bytes[6], bytes[7]]) as usize;
    let end = (HEADER_SIZE as usize + max_count * INDEX_RECORD_SIZE as usize).min(bytes.len());
    let region = &bytes[HEADER_SIZE as usize..end];
    let parsed = parse_index(region, 0);
    let next = (parsed.slots as usize + 1) * INDEX_RECORD_SIZE as usize;
    region.len() > next && region[next..].chunks_exact(INDEX_RECORD_SIZE as usize).any(|r| r.iter().any(|&b| b != 0))
}

#[test]
fn corrupt_segment_files() {
    let (image, path) = segment_image();
    let original = image.files[&path].clone();
    let data_start = (HEADER_SIZE + u64::from(SEGMENT_MAX_COUNT) * INDEX_RECORD_SIZE) as usize;
    let index_region = HEADER_SIZE as usize..data_start;
    let want: BTreeMap<u64, (u64, Vec<u8>)> = (1..=25).map(|i| (i, (1, payload("s1", i, 1)))).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(0x5e9_0002);
    let mut o = SegmentOutcomes::default();
    for case in 0..CASES {
        let c = corrupt(&mut rng, &original, HEADER_SIZE as usize, Some(index_region.clone()));
        let touches_index = c.touched.start < data_start;

        // Read it as a reader would.
        let mut fs = build(case, &image, &path, &c.bytes);
        no_panic(case, &c.what, || match SegmentReader::open(&mut fs, &path) {
            Ok(r) => {
                o.open_ok += 1;
                // Every index written (absent ones included) and every index the parse came up with.
                let mut indexes: Vec<LogIndex> = (1..=20).map(LogIndex).chain(r.indexes()).collect();
                indexes.sort();
                indexes.dedup();
                for i in indexes {
                    match r.read(&mut fs, i) {
                        Ok(Some((t, d))) if want.get(&i.0) == Some(&(t.0, d.clone())) => o.reads_correct += 1,
                        Ok(Some(_)) => {
                            assert!(touches_index, "case {case} ({}): wrong data from a data-only corruption", c.what);
                            o.reads_wrong.push((case, i.0, c.what.clone()));
                        }
                        Ok(None) => o.reads_absent += 1,
                        Err(SegmentError::CrcMismatch { .. }) => o.reads_crc += 1,
                        Err(SegmentError::UnexpectedEof { .. }) => o.reads_eof += 1,
                        Err(e) => panic!("case {case} ({}): read {i}: {e:?}", c.what),
                    }
                }
            }
            Err(SegmentError::MissingHeader { .. }) => o.open_missing_header += 1,
            Err(SegmentError::InvalidFormat { .. }) => o.open_invalid += 1,
            Err(e) => panic!("case {case} ({}): open: {e:?}", c.what),
        });

        // Boot: recovery flushes 21..25 by appending to this segment.
        let fs = build(case, &image, &path, &c.bytes);
        let (mut n, result) = no_panic(case, &c.what, || boot(case, Bugs::none(), fs, &["s1"]));
        match result {
            Ok(()) => {
                o.boot_ok += 1;
                // The entries recovered from the WAL (21..25), whose WAL file is now deleted, read back
                // from the newest segment holding them — unless the corrupt index had a hole: Ra's parse
                // stops at the first all-zero record, the append goes into that slot, and the stale
                // records after it (lower indexes) win again on the next parse — or unless a torn last
                // record pointed the next append below the data region, which Ra writes to unchecked.
                let lost = no_panic(case, &c.what, || {
                    let mut files = n.segment_files(&Uid::new("s1"));
                    files.sort();
                    let opened: Vec<Result<SegmentReader, SegmentError>> =
                        files.iter().rev().map(|f| SegmentReader::open(&mut n.fs, &format!("s1/{f}"))).collect();
                    if opened.iter().any(|r| r.is_err()) {
                        // Only an append steered below the data region can destroy a header.
                        assert!(index_points_below_data(&c.bytes), "case {case} ({}): segment unreadable", c.what);
                    }
                    let readers: Vec<SegmentReader> = opened.into_iter().filter_map(Result::ok).collect();
                    (21..=25u64)
                        .filter(|&i| {
                            let Some(r) = readers.iter().find(|r| r.index().entries.contains_key(&i)) else {
                                return true;
                            };
                            let got = r.read(&mut n.fs, LogIndex(i));
                            !matches!(got, Ok(Some((t, d))) if (t.0, &d) == (1, &want[&i].1))
                        })
                        .count()
                });
                if lost > 0 {
                    assert!(
                        index_has_hole(&c.bytes) || index_points_below_data(&c.bytes),
                        "case {case} ({}): {lost} recovered entries lost without a hole in the index",
                        c.what
                    );
                    o.appended_lost.push((case, lost, c.what.clone()));
                }
            }
            Err(e) => {
                // A pwrite past the filesystem's maximum file size (a corrupt data offset) is EFBIG, as
                // Ra's pwrite would fail too; everything else must be a typed storage error.
                let efbig = matches!(&e, StorageError::Fs(fe) if fe.kind == vfs::ErrorKind::FileTooLarge);
                assert!(typed(&e) || efbig, "case {case} ({}): untyped error {e:?}", c.what);
                let name = format!("{e:?}");
                let name = name.split([' ', '(', '{']).next().unwrap_or_default().to_owned();
                let detail = match &e {
                    StorageError::Segment(se) => {
                        format!("{name}::{}", format!("{se:?}").split([' ', '{']).next().unwrap())
                    }
                    _ => name,
                };
                *o.boot_errors.entry(detail).or_default() += 1;
            }
        }
    }
    assert!(o.open_ok > 0 && o.open_missing_header > 0 && o.open_invalid > 0, "{o:?}");
    assert!(o.reads_correct > 0 && o.reads_absent > 0 && o.reads_crc > 0 && o.reads_eof > 0, "{o:?}");
    assert!(o.boot_ok > 0 && !o.boot_errors.is_empty(), "{o:?}");
    // Ra's segment format loses freshly flushed entries after a hole in a segment's index (see above).
    assert!(!o.appended_lost.is_empty(), "{o:?}");
}

#[test]
fn corrupt_writers_snapshots() {
    let (image, path) = writers_snapshot_image();
    let original = image.files[&path].clone();
    let s1 = Uid::new("s1");
    // Pristine: the snapshot is what the WAL starts from (the current WAL file is empty).
    {
        let fs = build(0, &image, &path, &original);
        let (n, result) = boot(0, Bugs::none(), fs, &["s1"]);
        result.unwrap();
        assert_eq!(n.wal.last_writer_seq(&s1), Some(WriterSeq::InSeq(LogIndex(10))));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0x3a1_0003);
    let (mut kept, mut rejected) = (0, 0);
    for case in 0..CASES {
        let c = corrupt(&mut rng, &original, 8, None);
        let fs = build(case, &image, &path, &c.bytes);
        let (mut n, result) = no_panic(case, &c.what, || boot(case, Bugs::none(), fs, &["s1"]));
        result.unwrap_or_else(|e| panic!("case {case} ({}): a corrupt writers.snapshot stopped boot: {e}", c.what));
        match n.wal.last_writer_seq(&s1) {
            Some(WriterSeq::InSeq(LogIndex(10))) => {
                assert_eq!(c.bytes, original, "case {case} ({}): changed bytes were accepted", c.what);
                kept += 1;
            }
            None => {
                assert_ne!(c.bytes, original, "case {case} ({}): unchanged bytes were rejected", c.what);
                rejected += 1;
            }
            other => panic!("case {case} ({}): writers state {other:?}", c.what),
        }
        assert_eq!(segment_contents(&mut n, &s1).len(), 10, "case {case}");
    }
    assert_eq!(kept + rejected, CASES);
    assert!(kept > 0 && rejected > 0);
}
