//! Unit-level tests of segment files (Ra's `ra_log_segment_SUITE`), segment ref compaction
//! (`ra_log_segments`) and mem tables (`ra_mt_SUITE`), on the simulated filesystem.

mod common;

use std::collections::BTreeMap;

use common::sim_fs;
use raft_core::storage::mem_table::{DeleteJob, DeleteSpec, InsertError, MemTables, SparseInsertError};
use raft_core::storage::segment::{
    HEADER_SIZE, INDEX_RECORD_SIZE, Segment, SegmentConfig, SegmentError, SegmentReader, parse_index,
};
use raft_core::storage::segref::{SegRef, SegRefs, compact};
use raft_core::{LogIndex, Payload, Seq, TableId, Term, Uid};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use vfs::{CrashModel, FileSystem, OpenOptions, SimFs};

const PATH: &str = "s/0000000000000001.segment";

fn config(max_count: u16) -> SegmentConfig {
    SegmentConfig {
        max_count,
        max_size_bytes: 64 << 20,
        max_pending: 1024,
        compute_checksums: true,
        index_parse: raft_core::storage::segment::IndexParse::Ra,
    }
}

fn fs_with_dir(seed: u64) -> SimFs {
    let mut fs = sim_fs(seed);
    fs.mkdir_all("s").unwrap();
    let root = fs.open_dir(".").unwrap();
    fs.fsync(root).unwrap();
    fs.close(root).unwrap();
    fs
}

fn sync_dir(fs: &mut SimFs, dir: &str) {
    let fd = fs.open_dir(dir).unwrap();
    fs.fsync(fd).unwrap();
    fs.close(fd).unwrap();
}

fn data(index: u64, term: u64) -> Vec<u8> {
    format!("data-{index}-{term}").into_bytes()
}

fn append_range(fs: &mut SimFs, seg: &mut Segment, from: u64, to: u64, term: u64) {
    for i in from..=to {
        assert!(seg.append(fs, LogIndex(i), Term(term), &data(i, term)).unwrap(), "index {i} did not fit");
    }
}

/// A segment at `PATH` (index room for 8) holding `from..=to` in `term`, written and closed.
fn closed_segment(fs: &mut SimFs, from: u64, to: u64, term: u64) {
    let mut seg = Segment::open_append(fs, PATH, config(8)).unwrap();
    append_range(fs, &mut seg, from, to, term);
    seg.close(fs).unwrap();
}

/// Every entry a reader sees: index -> (term, data).
fn read_all(fs: &mut SimFs, path: &str) -> BTreeMap<u64, (u64, Vec<u8>)> {
    let r = SegmentReader::open(fs, path).unwrap();
    let indexes: Vec<LogIndex> = r.indexes().collect();
    indexes
        .into_iter()
        .map(|i| {
            let (t, d) = r.read(fs, i).unwrap().unwrap();
            (i.0, (t.0, d))
        })
        .collect()
}

fn expected(ranges: &[(u64, u64, u64)]) -> BTreeMap<u64, (u64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for &(from, to, term) in ranges {
        for i in from..=to {
            out.insert(i, (term, data(i, term)));
        }
    }
    out
}

// ---- segment files -----------------------------------------------------------------------------

#[test]
fn write_close_open_read_round_trip() {
    let mut fs = fs_with_dir(1);
    let mut cfg = config(16);
    cfg.max_pending = 4;
    let mut seg = Segment::open_append(&mut fs, PATH, cfg).unwrap();
    assert_eq!((seg.range(), seg.segref(), seg.data_bytes()), (None, None, 0));
    // Index 0 is a valid first index in Ra.
    for i in 0..=10u64 {
        assert!(seg.append(&mut fs, LogIndex(i), Term(i / 4 + 1), &data(i, i / 4 + 1)).unwrap());
    }
    assert_eq!(seg.range(), Some((LogIndex(0), LogIndex(10))));
    let total: u64 = (0..=10u64).map(|i| data(i, i / 4 + 1).len() as u64).sum();
    assert_eq!(seg.data_bytes(), total);
    seg.sync(&mut fs).unwrap();
    seg.close(&mut fs).unwrap();

    let r = SegmentReader::open(&mut fs, PATH).unwrap();
    assert_eq!(r.range(), Some((LogIndex(0), LogIndex(10))));
    assert_eq!(
        r.segref(),
        Some(SegRef { file: "0000000000000001.segment".into(), first: LogIndex(0), last: LogIndex(10) })
    );
    assert_eq!(r.index().slots, 11);
    assert_eq!(r.index().data_offset, HEADER_SIZE + 16 * INDEX_RECORD_SIZE + total);
    assert_eq!(r.indexes().map(|i| i.0).collect::<Vec<_>>(), (0..=10).collect::<Vec<_>>());
    for i in 0..=10u64 {
        let t = i / 4 + 1;
        assert_eq!(r.read(&mut fs, LogIndex(i)).unwrap(), Some((Term(t), data(i, t))));
    }
    assert_eq!(r.read(&mut fs, LogIndex(11)).unwrap(), None);
    assert_eq!(fs.open_handle_count(), 0, "the reader closes what it opens");
}

#[test]
fn unchecked_entries_round_trip() {
    let mut fs = fs_with_dir(2);
    let mut cfg = config(8);
    cfg.compute_checksums = false;
    let mut seg = Segment::open_append(&mut fs, PATH, cfg).unwrap();
    append_range(&mut fs, &mut seg, 1, 3, 1);
    seg.close(&mut fs).unwrap();
    let r = SegmentReader::open(&mut fs, PATH).unwrap();
    assert!(r.index().entries.values().all(|rec| rec.crc == 0));
    assert_eq!(read_all(&mut fs, PATH), expected(&[(1, 3, 1)]));
}

#[test]
fn full_by_max_count() {
    let mut fs = fs_with_dir(3);
    let mut seg = Segment::open_append(&mut fs, PATH, config(4)).unwrap();
    append_range(&mut fs, &mut seg, 1, 4, 1);
    assert!(seg.is_full());
    assert!(!seg.append(&mut fs, LogIndex(5), Term(1), b"x").unwrap(), "a full segment refuses appends");
    assert_eq!(seg.range(), Some((LogIndex(1), LogIndex(4))));
    seg.close(&mut fs).unwrap();
    assert_eq!(read_all(&mut fs, PATH), expected(&[(1, 4, 1)]));
    // Reopened, it is still full.
    let mut seg = Segment::open_append(&mut fs, PATH, config(4)).unwrap();
    assert!(seg.is_full());
    assert!(!seg.append(&mut fs, LogIndex(5), Term(1), b"x").unwrap());
    seg.close(&mut fs).unwrap();
}

#[test]
fn full_by_max_size() {
    let mut fs = fs_with_dir(4);
    let mut cfg = config(64);
    cfg.max_size_bytes = 100;
    let mut seg = Segment::open_append(&mut fs, PATH, cfg).unwrap();
    // Ra's is_full: data size *greater than* max_size. Four 25-byte entries make exactly 100: not full.
    for i in 1..=4u64 {
        assert!(seg.append(&mut fs, LogIndex(i), Term(1), &[i as u8; 25]).unwrap());
    }
    assert_eq!(seg.data_bytes(), 100);
    assert!(!seg.is_full());
    assert!(seg.append(&mut fs, LogIndex(5), Term(1), &[5; 25]).unwrap());
    assert!(seg.is_full());
    assert!(!seg.append(&mut fs, LogIndex(6), Term(1), &[6; 1]).unwrap());
    seg.close(&mut fs).unwrap();

    // One entry larger than max_size still goes into an empty segment.
    let other = "s/0000000000000002.segment";
    let mut seg = Segment::open_append(&mut fs, other, cfg).unwrap();
    assert!(seg.append(&mut fs, LogIndex(1), Term(1), &[1; 500]).unwrap());
    assert!(seg.is_full());
    seg.close(&mut fs).unwrap();
    assert_eq!(SegmentReader::open(&mut fs, other).unwrap().indexes().count(), 1);
}

#[test]
fn reopen_and_append_continues_at_the_next_slot() {
    let mut fs = fs_with_dir(5);
    let mut seg = Segment::open_append(&mut fs, PATH, config(16)).unwrap();
    append_range(&mut fs, &mut seg, 1, 5, 1);
    seg.close(&mut fs).unwrap();
    let before = SegmentReader::open(&mut fs, PATH).unwrap().index().clone();

    let mut seg = Segment::open_append(&mut fs, PATH, config(16)).unwrap();
    assert_eq!(seg.range(), Some((LogIndex(1), LogIndex(5))));
    assert_eq!(seg.data_bytes(), before.data_offset - (HEADER_SIZE + 16 * INDEX_RECORD_SIZE));
    append_range(&mut fs, &mut seg, 6, 8, 2);
    seg.close(&mut fs).unwrap();

    let r = SegmentReader::open(&mut fs, PATH).unwrap();
    assert_eq!(r.index().slots, 8);
    assert_eq!(r.range(), Some((LogIndex(1), LogIndex(8))));
    // The new data starts where the old ended: no entry's data overlaps another's.
    let mut spans: Vec<(u64, u64)> = r.index().entries.values().map(|rec| (rec.offset, rec.len as u64)).collect();
    spans.sort();
    assert_eq!(spans[0].0, HEADER_SIZE + 16 * INDEX_RECORD_SIZE);
    for w in spans.windows(2) {
        assert_eq!(w[0].0 + w[0].1, w[1].0);
    }
    assert_eq!(r.index().entries[&6].offset, before.data_offset);
    assert_eq!(read_all(&mut fs, PATH), expected(&[(1, 5, 1), (6, 8, 2)]));
}

#[test]
fn overwrite_later_lower_record_wins() {
    let mut fs = fs_with_dir(6);
    let mut seg = Segment::open_append(&mut fs, PATH, config(32)).unwrap();
    append_range(&mut fs, &mut seg, 1, 10, 1);
    seg.close(&mut fs).unwrap();
    let mut seg = Segment::open_append(&mut fs, PATH, config(32)).unwrap();
    append_range(&mut fs, &mut seg, 5, 6, 2);
    // Ra's update_range: (min(first, idx), idx).
    assert_eq!(seg.range(), Some((LogIndex(1), LogIndex(6))));
    seg.close(&mut fs).unwrap();

    let r = SegmentReader::open(&mut fs, PATH).unwrap();
    assert_eq!(r.range(), Some((LogIndex(1), LogIndex(6))));
    assert_eq!(r.index().slots, 12);
    for i in 7..=10 {
        assert_eq!(r.read(&mut fs, LogIndex(i)).unwrap(), None, "index {i} was overwritten away");
    }
    assert_eq!(read_all(&mut fs, PATH), expected(&[(1, 4, 1), (5, 6, 2)]));

    // In the same flush, too.
    let other = "s/0000000000000002.segment";
    let mut seg = Segment::open_append(&mut fs, other, config(32)).unwrap();
    append_range(&mut fs, &mut seg, 1, 5, 1);
    append_range(&mut fs, &mut seg, 3, 4, 3);
    seg.close(&mut fs).unwrap();
    assert_eq!(read_all(&mut fs, other), expected(&[(1, 2, 1), (3, 4, 3)]));
}

fn record(idx: u64, term: u64, offset: u64, len: u32, crc: u32) -> Vec<u8> {
    let mut r = Vec::with_capacity(32);
    r.extend_from_slice(&idx.to_be_bytes());
    r.extend_from_slice(&term.to_be_bytes());
    r.extend_from_slice(&offset.to_be_bytes());
    r.extend_from_slice(&len.to_be_bytes());
    r.extend_from_slice(&crc.to_be_bytes());
    r
}

#[test]
fn index_parse_stops_at_the_first_all_zero_record() {
    let start = HEADER_SIZE + 8 * INDEX_RECORD_SIZE;
    let mut region = Vec::new();
    region.extend(record(1, 1, start, 10, 7));
    region.extend(record(2, 1, start + 10, 10, 8));
    region.extend([0u8; 32]);
    region.extend(record(3, 1, start + 20, 10, 9));
    region.extend([0u8; 5]); // a partial record is ignored too
    let parsed = parse_index(&region, start);
    assert_eq!(parsed.entries.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(parsed.slots, 2);
    assert_eq!(parsed.range, Some((LogIndex(1), LogIndex(2))));
    assert_eq!(parsed.data_offset, start + 20);

    // A record that is zero except for one byte is a record.
    let mut region = record(1, 1, start, 10, 7);
    let mut odd = vec![0u8; 32];
    odd[31] = 1;
    region.extend(odd);
    let parsed = parse_index(&region, start);
    assert_eq!(parsed.slots, 2);
    assert_eq!(parsed.entries.keys().copied().collect::<Vec<_>>(), vec![0], "index 0 < 1 dropped index 1");

    // On a file: zero the third record.
    let mut fs = fs_with_dir(7);
    closed_segment(&mut fs, 1, 6, 1);
    let fd = fs.open(PATH, &OpenOptions::read_write()).unwrap();
    fs.pwrite(fd, HEADER_SIZE + 2 * INDEX_RECORD_SIZE, &[0; 32]).unwrap();
    fs.close(fd).unwrap();
    let r = SegmentReader::open(&mut fs, PATH).unwrap();
    assert_eq!(r.indexes().map(|i| i.0).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(r.range(), Some((LogIndex(1), LogIndex(2))));
}

#[test]
fn open_rejects_bad_headers() {
    let mut fs = fs_with_dir(8);
    let write = |fs: &mut SimFs, bytes: &[u8]| {
        let fd = fs.open(PATH, &OpenOptions::create_truncate()).unwrap();
        fs.pwrite(fd, 0, bytes).unwrap();
        fs.close(fd).unwrap();
    };
    write(&mut fs, b"");
    assert_eq!(SegmentReader::open(&mut fs, PATH), Err(SegmentError::MissingHeader { path: PATH.into() }));
    assert!(matches!(Segment::open_append(&mut fs, PATH, config(8)), Err(SegmentError::MissingHeader { .. })));
    for bad in [&b"RAS"[..], b"RASG\0\x02\0", b"XASG\0\x02\0\x08", b"RASG\0\x01\0\x08", b"RASG\0\x03\0\x08"] {
        write(&mut fs, bad);
        assert_eq!(
            SegmentReader::open(&mut fs, PATH),
            Err(SegmentError::InvalidFormat { path: PATH.into() }),
            "{bad:?}"
        );
        assert!(matches!(Segment::open_append(&mut fs, PATH, config(8)), Err(SegmentError::InvalidFormat { .. })));
    }
    assert_eq!(fs.open_handle_count(), 0, "failed opens close their handles");
    assert!(matches!(SegmentReader::open(&mut fs, "s/nope.segment"), Err(SegmentError::Fs(_))));
}

#[test]
fn truncated_data_is_detected_on_read() {
    // Ra's `corrupted_segment`: lost bytes at the end are an error for the entries they held.
    let mut fs = fs_with_dir(9);
    closed_segment(&mut fs, 1, 4, 1);
    let len = fs.metadata(PATH).unwrap().len;
    let fd = fs.open(PATH, &OpenOptions::read_write()).unwrap();
    fs.set_len(fd, len - 3).unwrap();
    fs.close(fd).unwrap();
    let r = SegmentReader::open(&mut fs, PATH).unwrap();
    for i in 1..=3 {
        assert_eq!(r.read(&mut fs, LogIndex(i)).unwrap(), Some((Term(1), data(i, 1))));
    }
    assert_eq!(
        r.read(&mut fs, LogIndex(4)),
        Err(SegmentError::UnexpectedEof { path: PATH.into(), index: LogIndex(4) })
    );
    // A flipped data bit is a CRC failure.
    let off = r.index().entries[&2].offset;
    let fd = fs.open(PATH, &OpenOptions::read_write()).unwrap();
    fs.pwrite(fd, off, b"X").unwrap();
    fs.close(fd).unwrap();
    assert_eq!(r.read(&mut fs, LogIndex(2)), Err(SegmentError::CrcMismatch { path: PATH.into(), index: LogIndex(2) }));
}

/// A bit of an entry's durable data flipped on the medium: `fold`'s read (Ra's `fold0`) fails its CRC,
/// Ra's `read_sparse` (`sparse-read-crc-unchecked`) returns the flipped bytes as the entry's.
#[test]
fn a_rotted_entry_fails_its_crc_unless_read_unchecked() {
    let mut fs = fs_with_dir(9);
    closed_segment(&mut fs, 1, 4, 1);
    let r = SegmentReader::open(&mut fs, PATH).unwrap();
    let rec = r.index().entries[&3];
    fs.inject_bit_flip(PATH, rec.offset + 1, 5).unwrap();
    let crc_failure = Err(SegmentError::CrcMismatch { path: PATH.into(), index: LogIndex(3) });
    assert_eq!(r.read(&mut fs, LogIndex(3)), crc_failure);
    assert_eq!(r.read_with(&mut fs, LogIndex(3), true), crc_failure);
    let mut rotted = data(3, 1);
    rotted[1] ^= 1 << 5;
    assert_eq!(r.read_with(&mut fs, LogIndex(3), false).unwrap(), Some((Term(1), rotted)));
    // The other entries read as written either way.
    for check_crc in [true, false] {
        assert_eq!(r.read_with(&mut fs, LogIndex(2), check_crc).unwrap(), Some((Term(1), data(2, 1))));
    }
}

/// What a reader made of the entries after a power loss.
#[derive(Debug, Default)]
struct TornOutcomes {
    correct: u64,
    absent: u64,
    crc_mismatch: u64,
    unexpected_eof: u64,
    /// Shape A (seed, index): a record torn across a sector boundary kept its index, term and offset
    /// while its length and CRC read as zero: an unchecked, empty entry is served.
    empty_unchecked: Vec<(u64, u64)>,
    /// Shape B (seed): the same record kept its length and CRC with index, term and offset zero: an
    /// entry "0" whose lower index makes the parser drop every entry before it — synced ones included.
    index_zero: Vec<u64>,
    /// Synced entries missing from the index (seed, index).
    synced_lost: Vec<(u64, u64)>,
}

/// Whether index slot `slot` straddles a sector boundary (512-byte sectors; 8-byte header, 32-byte
/// records: every boundary falls 24 bytes into a record, between its offset and its length fields).
fn straddles(slot: u64) -> bool {
    let start = HEADER_SIZE + slot * INDEX_RECORD_SIZE;
    start / 512 != (start + INDEX_RECORD_SIZE - 1) / 512
}

/// Appends synced entries then unsynced ones to one segment, cuts the power (`Pessimistic`: every
/// touched sector independently keeps any version it had), and reads every entry back.
///
/// Finding: index records carry no checksum, and a record torn at a sector boundary is accepted. Two
/// shapes follow from Ra's layout (identical here): shape A serves an empty payload for an entry that
/// was never durable (wrong data), and shape B loses entries that *were* fsynced before — in Ra, entries
/// whose WAL file may already be deleted. Both are pinned below so that any other outcome fails.
#[test]
fn torn_tail_after_power_loss() {
    let mut o = TornOutcomes::default();
    for seed in 0..300u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut fs = fs_with_dir(seed);
        let mut seg = Segment::open_append(&mut fs, PATH, config(64)).unwrap();
        sync_dir(&mut fs, "s");
        let synced = rng.next_u64() % 30;
        let total = synced + 1 + rng.next_u64() % 30;
        if synced > 0 {
            append_range(&mut fs, &mut seg, 1, synced, 1);
            seg.sync(&mut fs).unwrap();
        }
        append_range(&mut fs, &mut seg, synced + 1, total, 1);
        seg.flush(&mut fs).unwrap();
        seg.abandon(&mut fs);
        fs.crash(CrashModel::Pessimistic);
        fs.power_on();

        // The header was fsynced and the directory too: the file opens.
        let r = SegmentReader::open(&mut fs, PATH).unwrap();
        let mut zero_record = false;
        for i in r.indexes() {
            let rec = r.index().entries[&i.0];
            if i.0 == 0 {
                // Shape B: only from a straddling slot's surviving length and CRC.
                let from_slot = (synced..total).find(|&s| straddles(s) && data(s + 1, 1).len() as u32 == rec.len);
                assert!(from_slot.is_some() && rec.offset == 0, "seed {seed}: unexplained entry 0: {rec:?}");
                assert!(
                    matches!(r.read(&mut fs, i), Err(SegmentError::CrcMismatch { .. })),
                    "seed {seed}: entry 0 reads the header, which fails its CRC"
                );
                o.index_zero.push(seed);
                zero_record = true;
            } else {
                assert!(i.0 <= total, "seed {seed}: unexplained entry {i}: {rec:?}");
            }
        }
        for i in 1..=total {
            match r.read(&mut fs, LogIndex(i)) {
                Ok(Some((t, d))) if (t, &d) == (Term(1), &data(i, 1)) => o.correct += 1,
                Ok(Some(got)) => {
                    // Shape A: nothing else may be served wrong.
                    let rec = r.index().entries[&i];
                    assert!(
                        i > synced && straddles(i - 1) && rec.len == 0 && rec.crc == 0 && got == (Term(1), vec![]),
                        "seed {seed}: wrong data for entry {i}: {got:?} from {rec:?}"
                    );
                    o.empty_unchecked.push((seed, i));
                }
                Ok(None) if i <= synced => {
                    assert!(zero_record, "seed {seed}: synced entry {i} lost without a torn index-0 record");
                    o.synced_lost.push((seed, i));
                }
                Ok(None) => o.absent += 1,
                Err(SegmentError::CrcMismatch { index, .. }) if index == LogIndex(i) && i > synced => {
                    o.crc_mismatch += 1
                }
                Err(SegmentError::UnexpectedEof { index, .. }) if index == LogIndex(i) && i > synced => {
                    o.unexpected_eof += 1
                }
                Err(e) => panic!("seed {seed} entry {i} (synced up to {synced}): {e}"),
            }
        }
    }
    assert!(o.correct > 0 && o.absent > 0, "{o:?}");
    assert!(o.crc_mismatch > 0 && o.unexpected_eof > 0, "power loss never tore an entry's data: {o:?}");
    // The Ra-format weaknesses are real under this crash model (see the doc comment above).
    assert!(!o.empty_unchecked.is_empty(), "{o:?}");
    assert!(!o.index_zero.is_empty() && !o.synced_lost.is_empty(), "{o:?}");
}

// ---- segment refs ------------------------------------------------------------------------------

fn sr(file: &str, first: u64, last: u64) -> SegRef {
    SegRef { file: file.to_owned(), first: LogIndex(first), last: LogIndex(last) }
}

#[test]
fn compaction_newer_truncates_older() {
    assert_eq!(compact(&[sr("b", 5, 10)], &[sr("a", 1, 8)]), vec![sr("b", 5, 10), sr("a", 1, 4)]);
    // Non-overlapping refs are kept as they are.
    assert_eq!(
        compact(&[sr("c", 10, 12)], &[sr("b", 5, 9), sr("a", 1, 4)]),
        vec![sr("c", 10, 12), sr("b", 5, 9), sr("a", 1, 4)]
    );
    // The cut drops refs wholly above it and truncates the first that survives, then stops.
    assert_eq!(compact(&[sr("c", 3, 12)], &[sr("b", 5, 9), sr("a", 1, 4)]), vec![sr("c", 3, 12), sr("a", 1, 2)]);
    // Several new refs, newest first, applied oldest first.
    assert_eq!(
        compact(&[sr("d", 9, 10), sr("c", 4, 8)], &[sr("a", 1, 6)]),
        vec![sr("d", 9, 10), sr("c", 4, 8), sr("a", 1, 3)]
    );
}

#[test]
fn compaction_newer_removes_wholly_covered_older() {
    assert_eq!(compact(&[sr("b", 1, 10)], &[sr("a", 3, 8)]), vec![sr("b", 1, 10)]);
    assert_eq!(compact(&[sr("c", 2, 20)], &[sr("b", 6, 10), sr("a", 2, 5)]), vec![sr("c", 2, 20)]);
    // At runtime old refs dropped by compaction are only forgotten (Ra deletes their files at init).
    let mut refs = SegRefs::from_newest_first(&[sr("b", 6, 10), sr("a", 1, 5)]);
    assert_eq!(refs.update(&[sr("c", 1, 12)]), Vec::<String>::new());
    assert_eq!(refs.refs(), &[sr("c", 1, 12)]);
}

#[test]
fn update_segments_limited_not_overwritten() {
    // Ra's ra_log_segments:update_segments_limited_not_overwritten_test, as data.
    let mut refs = SegRefs::from_newest_first(&[sr("20", 20, 29), sr("10", 10, 19)]);
    let overwritten = refs.update(&[sr("50", 50, 59), sr("40", 30, 55), sr("30", 30, 39)]);
    assert_eq!(overwritten, vec!["30".to_owned()]);
    assert_eq!(refs.refs(), &[sr("50", 50, 59), sr("40", 30, 49), sr("20", 20, 29), sr("10", 10, 19)]);
}

#[test]
fn compaction_of_the_same_file_extended() {
    let mut refs = SegRefs::from_newest_first(&[sr("a", 1, 5)]);
    assert_eq!(refs.update(&[sr("a", 1, 8)]), Vec::<String>::new());
    assert_eq!(refs.refs(), &[sr("a", 1, 8)]);
    // Appended to and then a successor opened in one flush.
    assert_eq!(refs.update(&[sr("b", 11, 12), sr("a", 1, 10)]), Vec::<String>::new());
    assert_eq!(refs.refs(), &[sr("b", 11, 12), sr("a", 1, 10)]);
    assert_eq!(refs.find(LogIndex(10)), Some(&sr("a", 1, 10)));
    assert_eq!(refs.find(LogIndex(11)), Some(&sr("b", 11, 12)));
    assert_eq!(refs.find(LogIndex(13)), None);
}

#[test]
fn segrefs_update_returns_removed_files_by_name() {
    // Init-time compaction (Ra's ra_log_segments:init) from a newest-first listing.
    let refs = SegRefs::from_newest_first(&[sr("c", 8, 12), sr("b", 4, 9), sr("a", 1, 5)]);
    assert_eq!(refs.refs(), &[sr("c", 8, 12), sr("b", 4, 7), sr("a", 1, 3)]);

    let mut refs = SegRefs::from_newest_first(&[sr("b", 6, 10), sr("a", 1, 5)]);
    // b wholly covered (forgotten, file left to init), a truncated.
    assert_eq!(refs.update(&[sr("c", 4, 12)]), Vec::<String>::new());
    assert_eq!(refs.refs(), &[sr("c", 4, 12), sr("a", 1, 3)]);
    // A new ref wholly covered by a newer one in the same notification is reported, by name.
    assert_eq!(refs.update(&[sr("e", 13, 20), sr("d", 13, 15)]), vec!["d".to_owned()]);
    assert_eq!(refs.refs(), &[sr("e", 13, 20), sr("c", 4, 12), sr("a", 1, 3)]);
}

#[test]
fn pr_589_fix_3_truncated_but_referenced_segment_is_kept() {
    // A WAL file replayed after a power cut (its unlink was lost) is flushed a second time, into a
    // newer segment: the older segment's range shrinks, but the file is still referenced and must not
    // be deleted. Comparing (name, range) pairs would list "a" here.
    let mut refs = SegRefs::from_newest_first(&[sr("a", 1, 10)]);
    let removed = refs.update(&[sr("b", 5, 15)]);
    assert_eq!(removed, Vec::<String>::new());
    assert_eq!(refs.refs(), &[sr("b", 5, 15), sr("a", 1, 4)]);
    assert_eq!(refs.find(LogIndex(3)).map(|r| r.file.as_str()), Some("a"));
    assert_eq!(refs.find(LogIndex(5)).map(|r| r.file.as_str()), Some("b"));
    // Shrinking a second time still keeps it (b, wholly covered, is forgotten, not reported).
    assert_eq!(refs.update(&[sr("c", 3, 20)]), Vec::<String>::new());
    assert_eq!(refs.refs(), &[sr("c", 3, 20), sr("a", 1, 2)]);
}

// ---- mem tables --------------------------------------------------------------------------------

fn p(index: u64) -> Payload {
    Payload::from(format!("p{index}").into_bytes())
}

fn seq(from: u64, to: u64) -> Seq {
    Seq::from_range(LogIndex(from), LogIndex(to))
}

fn keys(store: &MemTables, tid: TableId) -> Vec<u64> {
    store.indexes_in(tid).iter().map(|i| i.0).collect()
}

#[test]
fn mem_table_insert() {
    let mut store = MemTables::new();
    let uid = Uid::new("u");
    let mut mt = store.mem_table_please(&uid);
    for i in 1..=5 {
        mt.insert(&mut store, LogIndex(i), Term(1), p(i)).unwrap();
    }
    assert_eq!(mt.indexes(), &seq(1, 5));
    assert_eq!(mt.insert(&mut store, LogIndex(5), Term(2), p(5)), Err(InsertError::Overwriting));
    assert_eq!(mt.insert(&mut store, LogIndex(3), Term(2), p(3)), Err(InsertError::Overwriting));
    assert_eq!(mt.insert(&mut store, LogIndex(7), Term(1), p(7)), Err(InsertError::UnexpectedSparse));
    assert_eq!(mt.lookup(&store, LogIndex(3)).unwrap(), Some((Term(1), p(3))));
    // The owner opens a successor for the overwrite.
    let mut mt2 = store.new_mem_table_please(&uid, mt);
    mt2.insert(&mut store, LogIndex(3), Term(2), p(3)).unwrap();
    assert_eq!(mt2.lookup(&store, LogIndex(3)).unwrap(), Some((Term(2), p(3))));
    assert_eq!(mt2.lookup(&store, LogIndex(2)).unwrap(), Some((Term(1), p(2))));
    assert_eq!(mt2.range(), Some((LogIndex(1), LogIndex(3))));
    let t1 = mt2.prev().unwrap().tid();
    assert_eq!(mt2.tid_for(&store, LogIndex(3), Term(1)), Some(t1));
    assert_eq!(mt2.tid_for(&store, LogIndex(3), Term(2)), Some(mt2.tid()));
    // A deleted table under its owner.
    store.delete_table(mt2.tid());
    assert_eq!(mt2.insert(&mut store, LogIndex(4), Term(2), p(4)), Err(InsertError::TableGone(mt2.tid())));
}

#[test]
fn mem_table_insert_sparse() {
    let mut store = MemTables::new();
    let uid = Uid::new("u");
    let mut mt = store.mem_table_please(&uid);
    // An empty table accepts anything, whatever the writer's previous index.
    mt.insert_sparse(&mut store, LogIndex(10), Term(1), p(10), Some(LogIndex(3))).unwrap();
    mt.insert_sparse(&mut store, LogIndex(15), Term(1), p(15), Some(LogIndex(10))).unwrap();
    assert_eq!(mt.indexes(), &Seq::from_indexes([LogIndex(10), LogIndex(15)]));
    assert_eq!(
        mt.insert_sparse(&mut store, LogIndex(20), Term(1), p(20), Some(LogIndex(14))),
        Err(SparseInsertError::GapDetected)
    );
    assert_eq!(mt.insert_sparse(&mut store, LogIndex(20), Term(1), p(20), None), Err(SparseInsertError::GapDetected));
    assert_eq!(
        mt.insert_sparse(&mut store, LogIndex(15), Term(2), p(15), Some(LogIndex(15))),
        Err(SparseInsertError::Overwriting)
    );
    assert_eq!(
        mt.insert_sparse(&mut store, LogIndex(12), Term(2), p(12), Some(LogIndex(11))),
        Err(SparseInsertError::Overwriting),
        "overwriting wins over a gap"
    );
    mt.insert_sparse(&mut store, LogIndex(16), Term(1), p(16), Some(LogIndex(15))).unwrap();
    assert_eq!(keys(&store, mt.tid()), vec![10, 15, 16]);
}

#[test]
fn mem_table_please_rescans_a_half_deleted_table() {
    let mut store = MemTables::new();
    let uid = Uid::new("u");
    let mut mt = store.mem_table_please(&uid);
    for i in 1..=100 {
        mt.insert(&mut store, LogIndex(i), Term(1), p(i)).unwrap();
    }
    let tid = mt.tid();
    // A range delete of 1..60, interrupted after 8 keys.
    let mut job = DeleteJob::plan(&store, &DeleteSpec::Indexes(tid, seq(1, 60)));
    assert_eq!(job.remaining(), 60);
    assert!(!job.step(&mut store, 8));
    assert_eq!(job.remaining(), 52);
    assert_eq!(store.table_len(tid), 92);

    // The owner's handle still says 1..100; a fresh look-up re-derives the table from what is there.
    assert_eq!(mt.indexes(), &seq(1, 100));
    let again = store.mem_table_please(&uid);
    assert_eq!(again.tid(), tid);
    assert_eq!(again.indexes(), &store.indexes_in(tid));
    assert_eq!(again.indexes().len(), 92);
    assert_ne!(again.indexes().first(), Some(LogIndex(9)), "the range delete did not go in index order");
    assert!(again.indexes().ranges().count() > 1, "holes in the middle: {}", again.indexes());

    job.run(&mut store);
    assert_eq!(store.mem_table_please(&uid).indexes(), &seq(61, 100));
}

#[test]
fn delete_job_orders() {
    let build = || {
        let mut store = MemTables::new();
        let uid = Uid::new("u");
        let mut mt = store.mem_table_please(&uid);
        for i in 1..=100 {
            mt.insert(&mut store, LogIndex(i), Term(1), p(i)).unwrap();
        }
        (store, mt.tid())
    };

    // More than half the table: a range delete, visiting keys in hash order.
    let (mut store, tid) = build();
    let mut job = DeleteJob::plan(&store, &DeleteSpec::Indexes(tid, seq(1, 60)));
    let mut visited = Vec::new();
    while !job.is_done() {
        let before: Vec<u64> = keys(&store, tid);
        job.step(&mut store, 1);
        let after = keys(&store, tid);
        visited.extend(before.into_iter().filter(|k| !after.contains(k)));
    }
    assert_eq!(visited.len(), 60);
    assert_ne!(visited, (1..=60).collect::<Vec<_>>(), "range deletes visit keys in hash order");
    let mut sorted = visited.clone();
    sorted.sort();
    assert_eq!(sorted, (1..=60).collect::<Vec<_>>());
    assert_eq!(keys(&store, tid), (61..=100).collect::<Vec<_>>());

    // A small delete with nothing below it: per key, in index order.
    let (mut store, tid) = build();
    let mut job = DeleteJob::plan(&store, &DeleteSpec::Indexes(tid, seq(1, 10)));
    assert!(!job.step(&mut store, 3));
    assert_eq!(keys(&store, tid)[0], 4);
    job.run(&mut store);
    assert_eq!(keys(&store, tid), (11..=100).collect::<Vec<_>>());

    // A small delete with an entry left below it (a missed flush event): the mop-up range delete.
    let (mut store, tid) = build();
    DeleteJob::plan(&store, &DeleteSpec::Indexes(tid, seq(50, 55))).run(&mut store);
    assert_eq!(keys(&store, tid), (56..=100).collect::<Vec<_>>());

    // Below and Table specs; a whole table counts as one unit.
    let (mut store, tid) = build();
    let mut job =
        DeleteJob::plan(&store, &DeleteSpec::Multi(vec![DeleteSpec::Below(tid, LogIndex(3)), DeleteSpec::Table(tid)]));
    assert_eq!(job.remaining(), 3);
    assert!(job.step(&mut store, 3));
    assert!(!store.table_exists(tid));
    assert!(store.is_empty());
}

#[test]
fn record_flushed() {
    let mut store = MemTables::new();
    let uid = Uid::new("u");
    let mut mt = store.mem_table_please(&uid);
    for i in 1..=10 {
        mt.insert(&mut store, LogIndex(i), Term(1), p(i)).unwrap();
    }
    let t1 = mt.tid();
    // Nothing flushed that the table holds.
    assert_eq!(mt.record_flushed(t1, &seq(11, 12)), None);
    assert_eq!(mt.record_flushed(t1, &Seq::new()), None);
    assert_eq!(mt.record_flushed(TableId(999), &seq(1, 2)), None);
    // Flushed 3..5: everything up to 5 goes (indexes are written in order; a missed event is mopped up).
    let spec = mt.record_flushed(t1, &seq(3, 5)).unwrap();
    assert_eq!(spec, DeleteSpec::Indexes(t1, seq(1, 5)));
    assert_eq!(mt.indexes(), &seq(6, 10));
    DeleteJob::plan(&store, &spec).run(&mut store);
    assert_eq!(keys(&store, t1), (6..=10).collect::<Vec<_>>());

    // An overwrite into a successor; the older table's flush empties it: the whole table goes.
    let mut mt = store.new_mem_table_please(&uid, mt);
    for i in 8..=12 {
        mt.insert(&mut store, LogIndex(i), Term(2), p(i)).unwrap();
    }
    let t2 = mt.tid();
    // Flushed 6..7 of the older table: only those go (8..10 are still there, shadowed by t2).
    assert_eq!(mt.record_flushed(t1, &seq(6, 7)), Some(DeleteSpec::Indexes(t1, seq(6, 7))));
    assert_eq!(mt.prev().unwrap().indexes(), &seq(8, 10));
    let spec = mt.record_flushed(t1, &seq(8, 10)).unwrap();
    assert_eq!(spec, DeleteSpec::Table(t1));
    assert!(mt.prev().is_none());
    DeleteJob::plan(&store, &spec).run(&mut store);
    assert!(!store.table_exists(t1));
    assert_eq!(store.tables_of(&uid), vec![t2]);

    // A newer table's flush also clears older tables below it.
    let mut mt = store.new_mem_table_please(&uid, mt);
    for i in 13..=15 {
        mt.insert(&mut store, LogIndex(i), Term(2), p(i)).unwrap();
    }
    let t3 = mt.tid();
    let spec = mt.record_flushed(t3, &seq(13, 14)).unwrap();
    assert_eq!(spec, DeleteSpec::Multi(vec![DeleteSpec::Indexes(t3, seq(13, 14)), DeleteSpec::Table(t2)]));
    assert!(mt.prev().is_none());
    DeleteJob::plan(&store, &spec).run(&mut store);
    assert_eq!(store.tables_of(&uid), vec![t3]);
    assert_eq!(keys(&store, t3), vec![15]);
}

#[test]
fn set_first() {
    let build = || {
        let mut store = MemTables::new();
        let uid = Uid::new("u");
        let mut mt = store.mem_table_please(&uid);
        for i in 1..=10 {
            mt.insert(&mut store, LogIndex(i), Term(1), p(i)).unwrap();
        }
        let mut mt = store.new_mem_table_please(&uid, mt);
        for i in 11..=20 {
            mt.insert(&mut store, LogIndex(i), Term(1), p(i)).unwrap();
        }
        (store, mt)
    };
    let apply = |store: &mut MemTables, specs: &[DeleteSpec]| {
        for s in specs {
            DeleteJob::plan(store, s).run(store);
        }
    };

    // Inside the older table: it is cut, the newer one untouched.
    let (mut store, mut mt) = build();
    let (t1, t2) = (mt.prev().unwrap().tid(), mt.tid());
    let specs = mt.set_first(LogIndex(5));
    apply(&mut store, &specs);
    assert_eq!(keys(&store, t1), (5..=10).collect::<Vec<_>>());
    assert_eq!(keys(&store, t2), (11..=20).collect::<Vec<_>>());
    assert_eq!(mt.prev().unwrap().indexes(), &seq(5, 10));
    assert_eq!(mt.range(), Some((LogIndex(5), LogIndex(20))));

    // Inside the newer table: the older table is dropped whole.
    let (mut store, mut mt) = build();
    let specs = mt.set_first(LogIndex(15));
    assert_eq!(specs, vec![DeleteSpec::Indexes(t2, seq(11, 14)), DeleteSpec::Table(t1)]);
    apply(&mut store, &specs);
    assert!(!store.table_exists(t1));
    assert_eq!(keys(&store, t2), (15..=20).collect::<Vec<_>>());
    assert!(mt.prev().is_none());
    assert_eq!(mt.indexes(), &seq(15, 20));

    // Past everything.
    let (mut store, mut mt) = build();
    let specs = mt.set_first(LogIndex(30));
    apply(&mut store, &specs);
    assert_eq!(store.total_entries(), 0);
    assert!(mt.indexes().is_empty());
    assert_eq!(mt.range(), None);
}

#[test]
fn the_contiguous_parse_ends_at_a_torn_record() {
    use raft_core::storage::segment::{INDEX_RECORD_SIZE, IndexParse, parse_index_with};
    let data_start = 8 + 4 * INDEX_RECORD_SIZE;
    let record = |idx: u64, offset: u64, len: u32| {
        let mut r = Vec::new();
        r.extend_from_slice(&idx.to_be_bytes());
        r.extend_from_slice(&1u64.to_be_bytes());
        r.extend_from_slice(&offset.to_be_bytes());
        r.extend_from_slice(&len.to_be_bytes());
        r.extend_from_slice(&7u32.to_be_bytes());
        r
    };
    // 10 and 11 are contiguous; the third is torn: index and offset read 0, length and crc survive.
    let mut region = record(10, data_start, 5);
    region.extend(record(11, data_start + 5, 5));
    region.extend(record(0, 0, 5));
    region.extend(vec![0u8; INDEX_RECORD_SIZE as usize]);
    let ra = parse_index_with(&region, data_start, IndexParse::Ra);
    assert_eq!(ra.range, Some((LogIndex(0), LogIndex(0))), "Ra's parse stretches the range to 0");
    assert_eq!(ra.entries.keys().copied().collect::<Vec<_>>(), vec![0]);
    let checked = parse_index_with(&region, data_start, IndexParse::Contiguous);
    assert_eq!(checked.range, Some((LogIndex(10), LogIndex(11))));
    assert_eq!((checked.slots, checked.data_offset), (2, data_start + 10), "the next append overwrites the torn slot");
}

#[test]
fn a_record_torn_at_a_sector_boundary_is_not_an_empty_entry() {
    use raft_core::storage::segment::{IndexParse, parse_index_with};
    // Record 15 lies at 8 + 32·15 = 488..520, across the 512-byte sector boundary: index, term and offset
    // before it, length and checksum after. Entries 0..=14 are synced; 15..=20 are appended and flushed,
    // and power is cut before the fsync. Whatever each sector kept, the checked parse never serves an
    // entry the segment writer did not write; Ra's parse (and the contiguous one) serve an empty 15 when
    // the first sector was kept and the second was not.
    let (mut torn, mut cases) = (0, 0);
    for seed in 0..400u64 {
        let mut fs = fs_with_dir(seed);
        let mut seg = Segment::open_append(&mut fs, PATH, config(64)).unwrap();
        append_range(&mut fs, &mut seg, 0, 14, 1);
        seg.sync(&mut fs).unwrap();
        sync_dir(&mut fs, "s");
        append_range(&mut fs, &mut seg, 15, 20, 1);
        seg.flush(&mut fs).unwrap();
        fs.crash(CrashModel::Pessimistic);
        fs.power_on();
        cases += 1;
        let region = {
            let fd = fs.open(PATH, &OpenOptions::read_only()).unwrap();
            let mut buf = vec![0u8; (64 * INDEX_RECORD_SIZE) as usize];
            let n = fs.pread(fd, HEADER_SIZE, &mut buf).unwrap();
            buf.truncate(n);
            fs.close(fd).unwrap();
            buf
        };
        let data_start = HEADER_SIZE + 64 * INDEX_RECORD_SIZE;
        let serves_empty = |rule: IndexParse, fs: &mut SimFs| {
            let parsed = parse_index_with(&region, data_start, rule);
            let reader = SegmentReader::open_with(fs, PATH, rule).unwrap();
            let empty = parsed
                .entries
                .keys()
                .any(|&i| matches!(reader.read(fs, LogIndex(i)), Ok(Some((_, d))) if d.is_empty()));
            // What the checked parse serves was written, byte for byte.
            if rule == IndexParse::Checked {
                for &i in parsed.entries.keys() {
                    if let Ok(Some((t, d))) = reader.read(fs, LogIndex(i)) {
                        assert_eq!((t.0, d), (1, data(i, 1)), "seed {seed} index {i}");
                    }
                }
            }
            empty
        };
        let ra = serves_empty(IndexParse::Ra, &mut fs);
        let contiguous = serves_empty(IndexParse::Contiguous, &mut fs);
        assert!(!serves_empty(IndexParse::Checked, &mut fs), "seed {seed}");
        assert_eq!(ra, contiguous, "seed {seed}: the contiguous parse does not see this tear");
        torn += u32::from(contiguous);
    }
    assert!(torn > 0, "no power cut in {cases} tore record 15 between its offset and its length");

    // Index 0's entry is the one empty entry raft-core writes (a brand-new log's first): the checked
    // parse keeps it.
    let mut fs = fs_with_dir(1);
    let mut seg = Segment::open_append(&mut fs, PATH, config(8)).unwrap();
    assert!(seg.append(&mut fs, LogIndex(0), Term(0), &[]).unwrap());
    assert!(seg.append(&mut fs, LogIndex(1), Term(1), &data(1, 1)).unwrap());
    seg.sync(&mut fs).unwrap();
    let reader = SegmentReader::open_with(&mut fs, PATH, IndexParse::Checked).unwrap();
    assert_eq!(reader.indexes().collect::<Vec<_>>(), vec![LogIndex(0), LogIndex(1)]);
    assert_eq!(reader.read(&mut fs, LogIndex(0)).unwrap(), Some((Term(0), Vec::new())));
}
