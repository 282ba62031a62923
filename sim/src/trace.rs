//! The rendered trace: one fixed-column line per notable event — simulated time, node, kind, detail —
//! so that a reader (or an insta snapshot) can follow a crash, what the disk kept, and each recovery
//! step down one column. Every line also feeds the run's rolling trace hash.

/// What a trace line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A node boots: pre-init done, WAL recovery starts.
    Boot,
    /// A server's log came back from disk (snapshot, segments, deletions).
    Recover,
    /// A server started (restarted from its config, or as new); a new cluster's election triggered.
    Server,
    /// An actor stopped with an error.
    Fail,
    /// A power loss, VM crash, WAL restart, or an armed or fired power cut.
    Crash,
    /// What the disk kept of the unsynced state at a power cut; a disk turning slow.
    Disk,
    /// A network fault starts or ends.
    Net,
    /// A node leads a term.
    Leader,
    /// A membership change asked, appended or refused; a member stopping after its removal.
    Member,
    /// A snapshot written or installed, or segments unlinked.
    Snapshot,
    /// A phase of the run (heal, convergence).
    Phase,
    /// A checker's finding.
    Violation,
    /// A message delivered to (or dropped before) the node (only with `trace_messages`).
    Msg,
    /// A filesystem call that changes or syncs the disk (only with `trace_fs`).
    Fs,
}

impl Kind {
    /// The column text.
    pub fn tag(self) -> &'static str {
        match self {
            Kind::Boot => "BOOT",
            Kind::Recover => "RECOVER",
            Kind::Server => "SERVER",
            Kind::Fail => "FAIL",
            Kind::Crash => "CRASH",
            Kind::Disk => "DISK",
            Kind::Net => "NET",
            Kind::Leader => "LEADER",
            Kind::Member => "MEMBER",
            Kind::Snapshot => "SNAPSHOT",
            Kind::Phase => "PHASE",
            Kind::Violation => "VIOLATION",
            Kind::Msg => "MSG",
            Kind::Fs => "FS",
        }
    }
}

/// The one legend of the trace's columns and kinds.
pub const LEGEND: &str = "\
columns: simulated time (ms.µs) | node | kind | detail
  BOOT      node boots: pre-init done, WAL recovery begins
  RECOVER   a server's log read back from disk (snapshot, segments, files deleted, indexes rebuilt)
  SERVER    a server started: restarted from its config, or as new; a new cluster's election triggered
  FAIL      an actor stopped with an error (a power cut's EIO, or a real failure)
  CRASH     power loss, VM crash, WAL restart, power cut armed at / fired by a durability point
  DISK      what a power cut kept of the unsynced state: per file the unsynced sectors kept, per
            directory operation kept or dropped; a disk turning slow (each WAL sync's latency)
  NET       isolation, one-way partition, reconnection
  LEADER    a node leads a term (with its commit index)
  MEMBER    a membership change asked of a leader, appended (at an index) or refused; a removed
            leader stopping
  SNAPSHOT  snapshot written (with its live indexes) or installed; segments unlinked
  PHASE     heal (faults off, liveness phase) and convergence
  VIOLATION a checker's finding
  MSG       a message delivered to the node, or dropped (only when the world traces messages)
  FS        a filesystem call that changes or syncs the disk: #op-number call path [@offset+length]
            [-> error] (only when the world traces filesystem calls)";

/// The FS line of a recorded filesystem call, or `None` for a call that neither changes nor syncs the
/// disk (reads, stats, opens of existing files, seeks, closes) or that failed without touching it (an
/// idempotent `mkdir` of an existing directory); calls failing with an I/O error or a power cut are shown.
pub fn describe_fs_op(op: &vfs::OpRecord) -> Option<String> {
    use vfs::ErrorKind::{Io, NoSpace, PoweredOff};
    // Opens are left out: the model's callers never open with O_TRUNC, and every open would be a line.
    let changes = op.kind.is_mutating() && op.kind != vfs::OpKind::Open;
    if !changes || op.result.is_err_and(|e| !matches!(e, Io | NoSpace | PoweredOff)) {
        return None;
    }
    let mut line = format!("#{} {} {}", op.seq, op.kind.name(), if op.path.is_empty() { "/" } else { &op.path });
    if let Some(to) = &op.to {
        line.push_str(&format!(" -> {to}"));
    }
    match (op.offset, op.len) {
        (Some(o), Some(l)) => line.push_str(&format!(" @{o}+{l}")),
        (None, Some(l)) => line.push_str(&format!(" len {l}")),
        _ => {}
    }
    if let Err(e) = op.result {
        line.push_str(&format!(" -> {e:?}"));
    }
    Some(line)
}

/// One trace line.
pub fn render(time_ns: u64, node: &str, kind: Kind, detail: &str) -> String {
    let us = time_ns / 1_000;
    format!("{:>7}.{:03} {:<4} {:<9} {detail}", us / 1_000, us % 1_000, node, kind.tag())
}

/// The DISK lines of a power cut: what each file with unsynced data and each pending directory
/// operation became.
pub fn describe_crash(decisions: &vfs::CrashDecisions) -> Vec<String> {
    const MAX_LINES: usize = 12;
    let mut lines: Vec<String> = Vec::new();
    for f in &decisions.files {
        let size = f.size_after.map(|s| format!(", size as after op {s}")).unwrap_or_default();
        lines.push(match f.sectors.len() {
            0 if f.size_after.is_none() => format!("{}: unsynced data dropped", f.path),
            n => format!("{}: {n} unsynced sector(s) kept{size}", f.path),
        });
    }
    for e in &decisions.entries {
        lines.push(format!("{} {}", if e.kept { "kept" } else { "dropped" }, e.op));
    }
    if lines.len() > MAX_LINES {
        let more = lines.len() - MAX_LINES;
        lines.truncate(MAX_LINES);
        lines.push(format!("… and {more} more"));
    }
    lines
}

/// A message in one short line: its kind and the indexes and terms that matter.
pub fn describe_message(msg: &raft_core::consensus::server::Message) -> String {
    use raft_core::consensus::server::Message as M;
    match msg {
        M::AppendEntries { term, prev_index, prev_term, entries, commit } => match (entries.first(), entries.last()) {
            (Some(a), Some(b)) => {
                format!("append t{term} after {prev_index}@t{prev_term}: {}..{} commit {commit}", a.index, b.index)
            }
            _ => format!("heartbeat t{term} after {prev_index}@t{prev_term} commit {commit}"),
        },
        M::AppendEntriesReply { term, success, next_index, last_index, last_term } => format!(
            "append {} t{term} next {next_index} last {last_index}@t{last_term}",
            if *success { "ok" } else { "refused" }
        ),
        M::PreVote { term, last_index, last_term } => format!("pre-vote t{term} last {last_index}@t{last_term}"),
        M::PreVoteReply { term, granted } => {
            format!("pre-vote {} t{term}", if *granted { "granted" } else { "denied" })
        }
        M::RequestVote { term, last_index, last_term } => {
            format!("vote request t{term} last {last_index}@t{last_term}")
        }
        M::RequestVoteReply { term, granted } => {
            format!("vote {} t{term}", if *granted { "granted" } else { "denied" })
        }
        M::InstallSnapshot { term, meta, chunk, last, .. } => {
            format!(
                "snapshot {}@t{} chunk {chunk}{} t{term}",
                meta.index,
                meta.term,
                if *last { " (last)" } else { "" }
            )
        }
        M::InstallSnapshotLive { term, meta, entries } => {
            let live: Vec<String> = entries.iter().map(|e| e.index.to_string()).collect();
            format!("snapshot {}@t{} live entries [{}] t{term}", meta.index, meta.term, live.join(","))
        }
        M::InstallSnapshotLiveAck { term } => format!("snapshot live entries acked t{term}"),
        M::InstallSnapshotAck { term, chunk } => format!("snapshot chunk {chunk} acked t{term}"),
        M::InstallSnapshotDeclined { term, next_index, last_index, last_term } => {
            format!("snapshot declined t{term} next {next_index} last {last_index}@t{last_term}")
        }
        M::ElectionTimeout => "election_timeout (leadership handed over)".to_owned(),
    }
}
