//! Crash-explores common file-update idioms on `SimFs`, ALICE-style: for each idiom, each crash model
//! and each point of the update (a power cut after every step), every distinct crash image the model
//! admits is applied and checked against what the idiom promises — the old config or the new one,
//! nothing else — plus `--seeds N` random crashes per point (default 20).
//!
//! `cargo run --release -p vfs --example idioms [-- --seeds N]`
#![allow(clippy::print_stdout)]

use vfs::{CrashModel, Fd, FileSystem, OpenOptions, SimFs, SimFsConfig, TreeEntry};

const OLD: &[u8] = &[b'o'; 1500];
const NEW: &[u8] = &[b'n'; 1500];

/// The filesystem and the handle an idiom is working with.
struct Ctx {
    fs: SimFs,
    fd: Option<Fd>,
}

type Step = fn(&mut Ctx);

fn open_tmp(c: &mut Ctx) {
    c.fd = Some(c.fs.open("dir/config.tmp", &OpenOptions::create_truncate()).unwrap());
}
fn open_config(c: &mut Ctx) {
    c.fd = Some(c.fs.open("dir/config", &OpenOptions::create()).unwrap());
}
fn truncate(c: &mut Ctx) {
    c.fs.set_len(c.fd.unwrap(), 0).unwrap();
}
fn write_new(c: &mut Ctx) {
    c.fs.pwrite(c.fd.unwrap(), 0, NEW).unwrap();
}
fn fsync(c: &mut Ctx) {
    c.fs.fsync(c.fd.unwrap()).unwrap();
}
fn close(c: &mut Ctx) {
    c.fs.close(c.fd.take().unwrap()).unwrap();
}
fn rename_tmp(c: &mut Ctx) {
    c.fs.rename("dir/config.tmp", "dir/config").unwrap();
}
fn unlink_config(c: &mut Ctx) {
    c.fs.unlink("dir/config").unwrap();
}
fn fsync_dir(c: &mut Ctx) {
    let dir = c.fs.open_dir("dir").unwrap();
    c.fs.fsync(dir).unwrap();
    c.fs.close(dir).unwrap();
}

const IDIOMS: [(&str, &[Step]); 6] = [
    ("overwrite in place", &[open_config, write_new, close]),
    ("truncate, write, fsync", &[open_config, truncate, write_new, fsync, close]),
    ("tmp, rename", &[open_tmp, write_new, close, rename_tmp]),
    ("tmp, fsync, rename", &[open_tmp, write_new, fsync, close, rename_tmp]),
    ("tmp, fsync, rename, fsync dir", &[open_tmp, write_new, fsync, close, rename_tmp, fsync_dir]),
    ("unlink, create, fsync file", &[unlink_config, open_config, write_new, fsync, close]),
];

/// A durable `dir/config` holding OLD, then the first `steps` steps of an idiom.
fn build(seed: u64, steps: &[Step]) -> SimFs {
    let fs = SimFs::new(SimFsConfig {
        seed,
        sector_size: 512,
        capacity_bytes: 1 << 30,
        max_file_size: 1 << 44,
        record_ops: false,
    });
    let mut c = Ctx { fs, fd: None };
    c.fs.mkdir("dir").unwrap();
    let fd = c.fs.open("dir/config", &OpenOptions::create()).unwrap();
    c.fs.write(fd, OLD).unwrap();
    c.fs.close(fd).unwrap();
    c.fs.sync().unwrap();
    for step in steps {
        step(&mut c);
    }
    c.fs
}

/// `None` if the image keeps the old or the new config, else what went wrong.
fn check(fs: &SimFs) -> Option<String> {
    match fs.tree().get("dir/config") {
        Some(TreeEntry::File(d)) if d == OLD || d == NEW => None,
        None => Some("config missing".into()),
        Some(TreeEntry::Dir) => Some("config is a directory".into()),
        Some(TreeEntry::File(d)) => {
            let old = d.iter().filter(|b| **b == b'o').count();
            let new = d.iter().filter(|b| **b == b'n').count();
            Some(format!("config of {} bytes: {old} old, {new} new, {} zero/garbage", d.len(), d.len() - old - new))
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seeds: u64 = match args.iter().position(|a| a == "--seeds") {
        Some(i) => args.get(i + 1).and_then(|n| n.parse().ok()).expect("usage: idioms [--seeds N]"),
        None => 20,
    };
    let models = [CrashModel::LoseUnsynced, CrashModel::Pessimistic, CrashModel::Ext4Ordered, CrashModel::Corrupting];
    println!("Power cut after every step of each idiom; each cell is bad images / images explored (exhaustive");
    println!("images of the model plus {seeds} random crashes per cut). Bad: neither the old nor the new config.\n");
    print!("| idiom |");
    for model in models {
        print!(" {} |", model.name());
    }
    println!(" first bad image (model, cut after step) |");
    println!("|---|{}---|", "---|".repeat(models.len()));
    for (name, steps) in IDIOMS {
        let mut first_bad = String::from("none");
        print!("| {name} |");
        for model in models {
            let (mut explored, mut bad) = (0u64, 0u64);
            for cut in 0..=steps.len() {
                let mut outcomes = Vec::new();
                for image in build(0, &steps[..cut]).enumerate_crash_images(model) {
                    let mut fs = build(0, &steps[..cut]);
                    fs.crash_with(&image.decisions).expect("an enumerated image applies");
                    outcomes.push((check(&fs), image.label));
                }
                for seed in 0..seeds {
                    let mut fs = build(seed, &steps[..cut]);
                    fs.crash(model);
                    outcomes.push((check(&fs), format!("random, seed {seed}")));
                }
                for (problem, label) in outcomes {
                    explored += 1;
                    if let Some(problem) = problem {
                        bad += 1;
                        if first_bad == "none" {
                            first_bad = format!("{problem} ({}, after step {cut}, {label})", model.name());
                        }
                    }
                }
            }
            print!(" {bad}/{explored} |");
        }
        println!(" {first_bad} |");
    }
}
