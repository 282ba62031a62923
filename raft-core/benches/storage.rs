//! Storage I throughput: entries per second through append → `Written` → roll-over → segment flush →
//! mem-table delete, on SimFs, one core, 64-byte payloads.
//!
//! Run by `cargo xtask bench` (which writes `BENCHMARKS.md`), or directly with
//! `cargo bench -p raft-core --bench storage -- [--reps N] [--profile]`. Prints a Markdown section.
//! The loop is the storage actors' calling protocol in its simplest form: FIFO mailboxes, continuations
//! first, and a server that inserts into its mem table, casts to the WAL, and on `Segments` records the
//! flush and deletes the flushed keys (Ra's `ra_log` + `ra_log_ets`).
#![allow(clippy::disallowed_methods, clippy::disallowed_types, clippy::print_stdout, missing_docs)]

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::Instant;

use raft_core::storage::mem_table::{DeleteJob, MemTable};
use raft_core::storage::messages::SegmentWriterMsg;
use raft_core::storage::messages::{WalAppend, WalMsg};
use raft_core::storage::segment::{IndexParse, SegmentConfig};
use raft_core::storage::segment_writer::{SegmentWriter, SegmentWriterConfig};
use raft_core::storage::shared::NodeShared;
use raft_core::storage::wal::{SyncMethod, Wal, WalConfig};
use raft_core::storage::{Envelope, LogEvent};
use raft_core::{Bugs, LogIndex, Payload, ProcessId, Term, Uid};
use vfs::{FileSystem, SimFs, SimFsConfig};

const ENTRIES: u64 = 1024 * PER_BATCH;
const PER_BATCH: u64 = 256;

struct Pipeline {
    fs: SimFs,
    shared: NodeShared,
    wal: Wal,
    sw: SegmentWriter,
    wal_box: VecDeque<WalMsg>,
    wal_next: Option<WalMsg>,
    sw_box: VecDeque<SegmentWriterMsg>,
    sw_next: Option<SegmentWriterMsg>,
    server_box: VecDeque<LogEvent>,
    out: Vec<Envelope>,
}

impl Pipeline {
    fn new() -> Pipeline {
        let fs = SimFs::new(SimFsConfig {
            seed: 1,
            sector_size: 4096,
            capacity_bytes: 8 << 30,
            max_file_size: 1 << 40,
            record_ops: false,
        });
        let wal = Wal::new(
            WalConfig {
                dir: "wal".into(),
                max_size_bytes: 8 << 20,
                first_file_max_size_bytes: 8 << 20,
                max_entries: None,
                sync_method: SyncMethod::Datasync,
                compute_checksums: true,
                bugs: Bugs::none(),
            },
            1,
        );
        let sw = SegmentWriter::new(SegmentWriterConfig {
            data_dir: String::new(),
            segment: SegmentConfig {
                max_count: 4096,
                max_size_bytes: 64 << 20,
                max_pending: 1024,
                compute_checksums: true,
                index_parse: IndexParse::Checked,
            },
            delete_keys_per_step: 64,
            bugs: Bugs::none(),
        });
        let mut p = Pipeline {
            fs,
            shared: NodeShared::new(),
            wal,
            sw,
            wal_box: VecDeque::from([WalMsg::Recover]),
            wal_next: None,
            sw_box: VecDeque::new(),
            sw_next: None,
            server_box: VecDeque::new(),
            out: Vec::new(),
        };
        p.run(&mut None);
        p
    }

    /// Runs every actor until all mailboxes are empty; the server handles its events.
    fn run(&mut self, mt: &mut Option<MemTable>) -> u64 {
        let mut written = 0;
        loop {
            if let Some(m) = self.wal_next.take().or_else(|| self.wal_box.pop_front()) {
                self.wal.handle(m, &mut self.shared, &mut self.fs, &mut self.out).unwrap();
            } else if let Some(m) = self.sw_next.take().or_else(|| self.sw_box.pop_front()) {
                self.sw.handle(m, &mut self.shared, &mut self.fs, &mut self.out).unwrap();
            } else if let Some(e) = self.server_box.pop_front() {
                match e {
                    LogEvent::Written { seq, .. } => written += seq.len(),
                    LogEvent::Segments { ranges, .. } => {
                        let mt = mt.as_mut().expect("segments before writes");
                        for (tid, seq) in ranges {
                            if let Some(spec) = mt.record_flushed(tid, &seq) {
                                DeleteJob::plan(&self.shared.mem_tables, &spec).run(&mut self.shared.mem_tables);
                            }
                        }
                    }
                    LogEvent::ResendFrom { .. } | LogEvent::SnapshotWritten { .. } | LogEvent::SnapshotError { .. } => {
                        panic!("no gaps or snapshots in this workload")
                    }
                }
            } else {
                return written;
            }
            for env in self.out.drain(..) {
                match env {
                    Envelope::Wal(m) => self.wal_box.push_back(m),
                    Envelope::WalContinue(m) => self.wal_next = Some(m),
                    Envelope::SegmentWriter(m) => self.sw_box.push_back(m),
                    Envelope::SegmentWriterContinue(m) => self.sw_next = Some(m),
                    Envelope::Server { event, .. } => self.server_box.push_back(event),
                    Envelope::Notice(_) | Envelope::Worker(_) => {}
                }
            }
        }
    }
}

/// Entries per second for one run of `ENTRIES` appends.
fn throughput() -> f64 {
    let mut p = Pipeline::new();
    let uid = Uid::new("s1");
    p.shared.directory.register(&uid, "s1", Some(ProcessId(1)));
    p.fs.mkdir_all("s1").unwrap();
    let payload: Payload = Payload::from(&[0x5Au8; 64][..]);
    let mut mt = Some(p.shared.mem_tables.mem_table_please(&uid));
    let start = Instant::now();
    let mut written = 0;
    let mut index = 0;
    while index < ENTRIES {
        for _ in 0..PER_BATCH {
            let m = mt.as_mut().unwrap();
            m.insert(&mut p.shared.mem_tables, LogIndex(index), Term(1), payload.clone()).unwrap();
            p.wal_box.push_back(WalMsg::Append(WalAppend {
                uid: uid.clone(),
                process: ProcessId(1),
                tid: m.tid(),
                prev_index: index.checked_sub(1).map(LogIndex),
                index: LogIndex(index),
                term: Term(1),
                payload: payload.clone(),
            }));
            index += 1;
        }
        written += p.run(&mut mt);
    }
    // Flush the tail so every entry went through a roll-over and a segment flush.
    p.wal_box.push_back(WalMsg::ForceRollOver);
    written += p.run(&mut mt);
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(written, ENTRIES);
    assert_eq!(p.sw.stats().entries, ENTRIES);
    assert_eq!(p.shared.mem_tables.total_entries(), 0, "every flushed entry deleted");
    black_box(&p.fs);
    ENTRIES as f64 / secs
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(f64::total_cmp);
    Stats { median: v[v.len() / 2], min: v[0], max: v[v.len() - 1] }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let reps: usize = arg("--reps").map(|r| r.parse().expect("--reps N")).unwrap_or(5);
    if args.iter().any(|a| a == "--profile") {
        for _ in 0..reps {
            black_box(throughput());
        }
        return;
    }
    let s = stats((0..reps).map(|_| throughput()).collect());
    println!("## raft-core storage I: entries through the WAL and the segment writer\n");
    println!(
        "{ENTRIES} appends of 64-byte payloads by one server, {PER_BATCH} per batch (one write + fdatasync \
         each), 8 MiB WAL files, 4096-entry segments; every entry is acknowledged (`Written`), rolled over, \
         flushed to a segment (fsync) and deleted from the mem table. SimFs, one core. Goal ≥ 500,000/s.\n"
    );
    println!("| pipeline | entries/s (min–max) |");
    println!("|---|---|");
    println!(
        "| append → Written → roll-over → segment flush → delete | {:.0} ({:.0}–{:.0}) |\n",
        s.median, s.min, s.max
    );
}
