//! The snapshot sender actor: live entries first, then acknowledged chunks; failure on a timeout or a
//! newer term; the report the leader gets.

use raft_core::consensus::sender::{SenderConfig, SenderEffect, SnapshotSender};
use raft_core::consensus::server::{Entry, EntryBody, Input, Message, ServerId};
use raft_core::storage::snapshot::SnapshotMeta;
use raft_core::{LogIndex, Term};

fn cfg(chunk_bytes: usize) -> SenderConfig {
    SenderConfig {
        leader: ServerId("a".into()),
        peer: ServerId("b".into()),
        term: Term(3),
        chunk_bytes,
        chunk_timeout_ms: 1_000,
    }
}

fn meta() -> SnapshotMeta {
    SnapshotMeta { index: LogIndex(40), term: Term(2), machine_version: 1, cluster: vec!["a".into(), "b".into()] }
}

fn live() -> Vec<Entry> {
    vec![Entry { index: LogIndex(7), term: Term(1), payload: EntryBody::Noop.encode() }]
}

fn sent(fx: &[SenderEffect]) -> Vec<Message> {
    fx.iter()
        .filter_map(|e| match e {
            SenderEffect::Send(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn live_entries_then_every_chunk_in_order_then_finished() {
    let state: Vec<u8> = (0..25u8).collect();
    let (mut s, fx) = SnapshotSender::start(cfg(10), meta(), &state, live());
    assert_eq!(sent(&fx), vec![Message::InstallSnapshotLive { term: Term(3), meta: meta(), entries: live() }]);
    assert!(fx.contains(&SenderEffect::SetTimer { after_ms: 1_000 }));
    let mut fx = s.handle_message(&Message::InstallSnapshotLiveAck { term: Term(3) });
    let mut received = Vec::new();
    for n in 0..3u32 {
        let msgs = sent(&fx);
        assert_eq!(msgs.len(), 1);
        let Message::InstallSnapshot { chunk, last, data, .. } = &msgs[0] else { panic!("not a chunk: {msgs:?}") };
        assert_eq!((*chunk, *last), (n, n == 2));
        received.extend_from_slice(data);
        fx = s.handle_message(&Message::InstallSnapshotAck { term: Term(3), chunk: n });
    }
    assert_eq!(received, state);
    assert_eq!(
        fx,
        vec![SenderEffect::Report(Input::SnapshotSenderFinished { peer: ServerId("b".into()), index: LogIndex(40) })]
    );
    assert!(s.is_done());
    assert!(s.handle_timeout().is_empty(), "a finished sender ignores its timer");
}

#[test]
fn a_missing_acknowledgement_fails_the_transfer() {
    let (mut s, _) = SnapshotSender::start(cfg(10), meta(), &[1, 2, 3], live());
    let _ = s.handle_message(&Message::InstallSnapshotLiveAck { term: Term(3) });
    assert_eq!(
        s.handle_timeout(),
        vec![SenderEffect::Report(Input::SnapshotSenderFailed { peer: ServerId("b".into()) })]
    );
    assert!(s.is_done());
    assert!(s.handle_message(&Message::InstallSnapshotAck { term: Term(3), chunk: 0 }).is_empty());
}

#[test]
fn stale_and_foreign_acknowledgements_are_ignored() {
    let state = vec![9u8; 30];
    let (mut s, _) = SnapshotSender::start(cfg(10), meta(), &state, Vec::new());
    // A chunk ack before the live phase is acknowledged, and a duplicate of an older ack, change nothing.
    assert!(s.handle_message(&Message::InstallSnapshotAck { term: Term(3), chunk: 0 }).is_empty());
    let fx = s.handle_message(&Message::InstallSnapshotLiveAck { term: Term(3) });
    assert_eq!(sent(&fx).len(), 1);
    let _ = s.handle_message(&Message::InstallSnapshotAck { term: Term(3), chunk: 0 });
    assert!(s.handle_message(&Message::InstallSnapshotAck { term: Term(3), chunk: 0 }).is_empty());
    assert!(s.handle_message(&Message::InstallSnapshotLiveAck { term: Term(3) }).is_empty());
    assert!(!s.is_done());
}

#[test]
fn a_newer_term_from_the_peer_fails_the_transfer() {
    let (mut s, _) = SnapshotSender::start(cfg(10), meta(), &[1], Vec::new());
    assert_eq!(
        s.handle_message(&Message::InstallSnapshotLiveAck { term: Term(4) }),
        vec![SenderEffect::Report(Input::SnapshotSenderFailed { peer: ServerId("b".into()) })]
    );
}

#[test]
fn an_empty_state_is_sent_as_one_empty_last_chunk() {
    let (mut s, _) = SnapshotSender::start(cfg(10), meta(), &[], Vec::new());
    let fx = s.handle_message(&Message::InstallSnapshotLiveAck { term: Term(3) });
    assert_eq!(
        sent(&fx),
        vec![Message::InstallSnapshot { term: Term(3), meta: meta(), chunk: 0, last: true, data: Vec::new() }]
    );
}

#[test]
fn a_decline_is_forwarded_to_the_leader_and_ends_the_transfer() {
    let declined = Message::InstallSnapshotDeclined {
        term: Term(3),
        next_index: LogIndex(42),
        last_index: LogIndex(41),
        last_term: Term(3),
    };
    let b = ServerId("b".into());
    // Ra 3.1.9: the follower's reply reaches the leader (which skips ahead) and the transfer ends normally.
    let (mut s, _) = SnapshotSender::start(cfg(10), meta(), &[1, 2, 3], live());
    let reply = Message::AppendEntriesReply {
        term: Term(3),
        success: false,
        next_index: LogIndex(42),
        last_index: LogIndex(41),
        last_term: Term(3),
    };
    assert_eq!(
        s.handle_message(&declined),
        vec![
            SenderEffect::Report(Input::Message { from: b.clone(), msg: reply }),
            SenderEffect::Report(Input::SnapshotSenderFinished { peer: b, index: meta().index }),
        ]
    );
    assert!(s.is_done() && s.handle_message(&declined).is_empty());
}
