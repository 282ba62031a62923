//! SimFs versus RealFs on the same call sequences, and the cost of a power cut.
//!
//! Run by `cargo xtask bench` (which writes `BENCHMARKS.md`), or directly with
//! `cargo bench -p vfs --bench vfs -- [--reps N] [--dir PATH]`. Prints a Markdown section on stdout.
//! RealFs runs in a directory on tmpfs (`/dev/shm` by default), so the comparison is against the kernel's
//! VFS and page cache, not a disk: the honest baseline for "how much does the model cost".
#![allow(clippy::disallowed_methods, clippy::disallowed_types, clippy::print_stdout, missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;
use vfs::{CrashModel, FileSystem, OpenOptions, RealFs, SimFs, SimFsConfig};

const CYCLES: u64 = 20_000;
const PENDING_OPS: usize = 10_000;

fn sim_fs(seed: u64) -> SimFs {
    SimFs::new(SimFsConfig {
        seed,
        sector_size: 512,
        capacity_bytes: 8 << 30,
        max_file_size: 1 << 44,
        record_ops: false,
    })
}

/// 4 KiB pwrite + fdatasync at increasing offsets (a WAL's pattern), wrapping at 16 MiB: the working set
/// is larger than the CPU caches, so both backends pay for moving 4 KiB to cold memory.
fn pwrite_fdatasync(fs: &mut dyn FileSystem) -> f64 {
    pwrite_fdatasync_within(fs, 16 << 20)
}

/// The same over a 64 KiB region: everything stays in cache, what remains is the cost of the calls.
fn pwrite_fdatasync_hot(fs: &mut dyn FileSystem) -> f64 {
    pwrite_fdatasync_within(fs, 64 << 10)
}

fn pwrite_fdatasync_within(fs: &mut dyn FileSystem, region: u64) -> f64 {
    let fd = fs.open("wal", &OpenOptions::create_truncate()).unwrap();
    let block = vec![0xA5u8; 4096];
    let start = Instant::now();
    for i in 0..CYCLES {
        let offset = (i * 4096) % region;
        black_box(fs.pwrite(fd, offset, &block).unwrap());
        fs.fdatasync(fd).unwrap();
    }
    let ns = start.elapsed().as_nanos() as f64 / CYCLES as f64;
    fs.close(fd).unwrap();
    fs.unlink("wal").unwrap();
    ns
}

/// create + close, rename over the previous file, unlink every tenth (a config/segment churn pattern).
fn create_rename_unlink(fs: &mut dyn FileSystem) -> f64 {
    fs.mkdir_all("d").unwrap();
    let start = Instant::now();
    for i in 0..CYCLES {
        let fd = fs.open("d/config.tmp", &OpenOptions::create_truncate()).unwrap();
        fs.close(fd).unwrap();
        fs.rename("d/config.tmp", "d/config").unwrap();
        if i % 10 == 9 {
            fs.unlink("d/config").unwrap();
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / CYCLES as f64;
    fs.rmdir("d").unwrap();
    ns
}

/// A node's disk with `PENDING_OPS` unsynced appends of `min..=max` bytes across WAL, segment and
/// snapshot files.
fn node_with_pending(seed: u64, min: u64, max: u64) -> SimFs {
    let mut fs = sim_fs(seed);
    fs.mkdir_all("wal").unwrap();
    fs.mkdir_all("uid/snapshots").unwrap();
    fs.sync().unwrap();
    let files = ["wal/0000000000000001.wal", "uid/0000000000000001.segment", "uid/snapshots/indexes"];
    let fds: Vec<_> = files.iter().map(|f| fs.open(f, &OpenOptions::create()).unwrap()).collect();
    let mut ops = files.len();
    let mut size = 64u64;
    while ops < PENDING_OPS {
        let fd = fds[ops % fds.len()];
        size = (size * 7 + 13) % (max - min + 1) + min;
        let data = vec![(ops % 251) as u8; size as usize];
        fs.append(fd, &data).unwrap();
        ops += 1;
    }
    assert!(fs.pending_count() >= PENDING_OPS);
    fs
}

/// Record sizes: a Ra WAL entry of a KV command is tens to hundreds of bytes; segments and snapshots
/// write larger chunks.
const RECORDS: [(&str, u64, u64); 2] = [("records of 64–512 B", 64, 512), ("appends of 64–4064 B", 64, 4064)];

fn power_loss_ms(model: CrashModel, seed: u64, (min, max): (u64, u64)) -> f64 {
    let mut fs = node_with_pending(seed, min, max);
    let start = Instant::now();
    black_box(fs.crash(model));
    start.elapsed().as_secs_f64() * 1e3
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(mut samples: Vec<f64>) -> Stats {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Stats { median: samples[samples.len() / 2], min: samples[0], max: samples[samples.len() - 1] }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let reps: usize = arg("--reps").map(|r| r.parse().expect("--reps N")).unwrap_or(5);
    // `--profile WORKLOAD` runs one SimFs workload in a loop, for perf/callgrind: pwrite, churn, crash.
    if let Some(which) = arg("--profile") {
        for rep in 0..reps {
            let mut fs = sim_fs(rep as u64);
            match which.as_str() {
                "pwrite" => drop(black_box(pwrite_fdatasync(&mut fs))),
                "churn" => drop(black_box(create_rename_unlink(&mut fs))),
                "crash" => drop(black_box(power_loss_ms(CrashModel::Pessimistic, rep as u64, (64, 4064)))),
                other => panic!("unknown workload {other}"),
            }
        }
        return;
    }
    let base = arg("--dir").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/dev/shm"));
    let dir = base.join(format!("vfs-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let mut rows = Vec::new();
    type Workload = fn(&mut dyn FileSystem) -> f64;
    let workloads: [(&str, Workload); 3] = [
        ("4 KiB pwrite + fdatasync, 16 MiB region", pwrite_fdatasync),
        ("4 KiB pwrite + fdatasync, 64 KiB region (in cache)", pwrite_fdatasync_hot),
        ("create + rename (+ unlink every 10th)", create_rename_unlink),
    ];
    for (name, workload) in workloads {
        let mut sim_samples = Vec::new();
        let mut real_samples = Vec::new();
        for rep in 0..reps {
            let mut sim = sim_fs(rep as u64);
            sim_samples.push(workload(&mut sim));
            let mut real = RealFs::new(&dir).unwrap();
            real_samples.push(workload(&mut real));
        }
        let (s, r) = (stats(sim_samples), stats(real_samples));
        rows.push(format!(
            "| {name} | {:.0} ns ({:.0}–{:.0}) | {:.0} ns ({:.0}–{:.0}) | {:.1}× |",
            s.median,
            s.min,
            s.max,
            r.median,
            r.min,
            r.max,
            r.median / s.median
        ));
    }
    let mut crash_rows = Vec::new();
    for model in [CrashModel::Pessimistic, CrashModel::Corrupting, CrashModel::Ext4Ordered, CrashModel::NoLoss] {
        let mut row = format!("| {} |", model.name());
        for (_, min, max) in RECORDS {
            let s = stats((0..reps).map(|rep| power_loss_ms(model, rep as u64, (min, max))).collect());
            row.push_str(&format!(" {:.2} ms ({:.2}–{:.2}) |", s.median, s.min, s.max));
        }
        crash_rows.push(row);
    }
    std::fs::remove_dir_all(&dir).unwrap();

    println!("## vfs: SimFs versus RealFs\n");
    println!(
        "Same call sequence on both, {CYCLES} cycles per repetition, {reps} repetitions; median (min–max) per \
         cycle. RealFs runs on tmpfs (`{}`). Goal: SimFs at least 5× faster.\n",
        base.display()
    );
    println!("| workload | SimFs | RealFs (tmpfs) | SimFs speed-up |");
    println!("|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    println!("\n## vfs: power loss of a node with {PENDING_OPS} pending operations\n");
    println!(
        "{PENDING_OPS} unsynced appends spread over a WAL, a segment and an `indexes` file (512-byte sectors); \
         time of `SimFs::crash(model)` alone, {reps} repetitions. Goal: under 5 ms.\n"
    );
    println!("| crash model | {} | {} |", RECORDS[0].0, RECORDS[1].0);
    println!("|---|---|---|");
    for row in crash_rows {
        println!("{row}");
    }
    println!(
        "\nReading the figures. The in-cache row isolates the cost of the calls: there SimFs is well ahead of \
         the kernel. Over a 16 MiB region both backends spend most of each cycle moving 4 KiB into memory that \
         is not in cache (profile: `memmove`, page faults and `malloc` of fresh pages dominate SimFs; the \
         model's own bookkeeping is a few percent), so the ratio there is bounded by memory bandwidth rather \
         than by the model. A power cut costs in proportion to the unsynced bytes whose sectors do not take \
         their latest version: WAL-sized records stay well inside the goal, 20 MB of large appends do not \
         (profile: rewriting sectors of the image and freeing the pending state)."
    );
    println!(
        "\nProfiling: `cargo bench -p vfs --bench vfs --no-run`, then `perf record --call-graph dwarf \
         target/release/deps/vfs-<hash> --reps 3 --profile pwrite|churn|crash` and `perf report` (Debian's \
         `linux-perf`), or `valgrind --tool=callgrind` on the same command for instruction counts."
    );
}
