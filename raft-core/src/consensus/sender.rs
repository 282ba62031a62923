//! The snapshot sender (spawned by Ra's `ra_server_proc` on the leader): transfers the current snapshot
//! to one peer — first the live entries (Ra's "pre" phase), then the machine state in chunks, each
//! acknowledged before the next — and reports success or failure to the leader.
//!
//! Key invariant: the sender fails (and the leader moves the peer to snapshot backoff) whenever an
//! acknowledgement does not arrive within `chunk_timeout_ms` — the receiver restarted, the network lost
//! a message, the transfer crossed a partition. That failure, followed by backoff, is the precondition of
//! PR 589 fix 4.

use crate::consensus::server::{Entry, Input, Message, ServerId};
use crate::storage::snapshot::SnapshotMeta;
use crate::types::Term;

/// What the sender needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderConfig {
    /// The leader it works for.
    pub leader: ServerId,
    /// The receiving peer.
    pub peer: ServerId,
    /// The leader's term.
    pub term: Term,
    /// Bytes of machine state per chunk (Ra: 1 MB).
    pub chunk_bytes: usize,
    /// How long to wait for each acknowledgement.
    pub chunk_timeout_ms: u64,
}

/// What the sender asks its caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderEffect {
    /// Send to the peer (as the leader).
    Send(Message),
    /// Arm the acknowledgement timer.
    SetTimer {
        /// Delay.
        after_ms: u64,
    },
    /// Give this input to the leader: `SnapshotSenderFinished` or `SnapshotSenderFailed` (the sender is
    /// then finished and must be dropped), or a reply of the peer's forwarded to it.
    Report(Input),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Live,
    Chunk(u32),
    Done,
}

/// One transfer.
#[derive(Debug, Clone)]
pub struct SnapshotSender {
    cfg: SenderConfig,
    meta: SnapshotMeta,
    chunks: Vec<Vec<u8>>,
    live: Vec<Entry>,
    phase: Phase,
}

impl SnapshotSender {
    /// Starts a transfer of `meta`/`state` with the snapshot's live `entries`; returns the first effects.
    pub fn start(
        cfg: SenderConfig,
        meta: SnapshotMeta,
        state: &[u8],
        live: Vec<Entry>,
    ) -> (SnapshotSender, Vec<SenderEffect>) {
        let size = cfg.chunk_bytes.max(1);
        let mut chunks: Vec<Vec<u8>> = state.chunks(size).map(<[u8]>::to_vec).collect();
        if chunks.is_empty() {
            chunks.push(Vec::new());
        }
        let mut s = SnapshotSender { cfg, meta, chunks, live, phase: Phase::Live };
        let fx = s.send_current();
        (s, fx)
    }

    fn send_current(&mut self) -> Vec<SenderEffect> {
        let msg = match &self.phase {
            Phase::Live => Message::InstallSnapshotLive {
                term: self.cfg.term,
                meta: self.meta.clone(),
                entries: self.live.clone(),
            },
            Phase::Chunk(n) => Message::InstallSnapshot {
                term: self.cfg.term,
                meta: self.meta.clone(),
                chunk: *n,
                last: *n as usize + 1 == self.chunks.len(),
                data: self.chunks[*n as usize].clone(),
            },
            Phase::Done => return Vec::new(),
        };
        vec![SenderEffect::Send(msg), SenderEffect::SetTimer { after_ms: self.cfg.chunk_timeout_ms }]
    }

    /// Whether the transfer is over (reported).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The peer.
    pub fn peer(&self) -> &ServerId {
        &self.cfg.peer
    }

    fn fail(&mut self) -> Vec<SenderEffect> {
        self.phase = Phase::Done;
        vec![SenderEffect::Report(Input::SnapshotSenderFailed { peer: self.cfg.peer.clone() })]
    }

    /// Handles a message from the peer (acknowledgements and a decline; anything else is ignored).
    pub fn handle_message(&mut self, msg: &Message) -> Vec<SenderEffect> {
        if let Message::InstallSnapshotDeclined { term, next_index, last_index, last_term } = *msg {
            if self.phase == Phase::Done {
                return Vec::new();
            }
            if term > self.cfg.term {
                return self.fail();
            }
            self.phase = Phase::Done;
            let reply = Message::AppendEntriesReply { term, success: false, next_index, last_index, last_term };
            return vec![
                SenderEffect::Report(Input::Message { from: self.cfg.peer.clone(), msg: reply }),
                SenderEffect::Report(Input::SnapshotSenderFinished {
                    peer: self.cfg.peer.clone(),
                    index: self.meta.index,
                }),
            ];
        }
        let ack_term = match msg {
            Message::InstallSnapshotLiveAck { term } if self.phase == Phase::Live => Some(*term),
            Message::InstallSnapshotAck { term, chunk } if self.phase == Phase::Chunk(*chunk) => Some(*term),
            _ => None,
        };
        let Some(term) = ack_term else { return Vec::new() };
        if term > self.cfg.term {
            // The peer knows a newer term: this leader is stale.
            return self.fail();
        }
        self.phase = match self.phase {
            Phase::Live => Phase::Chunk(0),
            Phase::Chunk(n) if (n as usize) + 1 < self.chunks.len() => Phase::Chunk(n + 1),
            _ => {
                self.phase = Phase::Done;
                return vec![SenderEffect::Report(Input::SnapshotSenderFinished {
                    peer: self.cfg.peer.clone(),
                    index: self.meta.index,
                })];
            }
        };
        self.send_current()
    }

    /// The acknowledgement timer fired: the transfer failed.
    pub fn handle_timeout(&mut self) -> Vec<SenderEffect> {
        if self.phase == Phase::Done { Vec::new() } else { self.fail() }
    }
}
