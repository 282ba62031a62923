//! Seed ranges and shards: `--seeds A..B`, `--shard I/N`, and which seeds a shard holds — what `explore`
//! runs and `merge` checks.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods, clippy::disallowed_types)]

use super::Usage;

pub(crate) fn parse_seeds(text: &str) -> Result<(u64, u64), Usage> {
    let bad = || Usage(format!("--seeds {text:?}: expected A..B with A < B (B excluded), e.g. 0..1000"));
    let (a, b) = text.split_once("..").ok_or_else(bad)?;
    let (a, b): (u64, u64) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
    if a >= b {
        return Err(Usage(format!("--seeds {text:?} is empty: A must be below B")));
    }
    Ok((a, b))
}

/// `--shard I/N`: shard I of N, 0 <= I < N.
pub(crate) fn parse_shard(text: &str) -> Result<(u64, u64), Usage> {
    let bad = || Usage(format!("--shard {text:?}: expected I/N with 0 <= I < N, e.g. 0/4"));
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// How many seeds of `first..end` shard `shard` of `shards` has: those `s` with `(s - first) % shards == shard`.
pub(crate) fn shard_len(first: u64, end: u64, shard: u64, shards: u64) -> u64 {
    (end - first).saturating_sub(shard).div_ceil(shards)
}
