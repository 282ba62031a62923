//! Ra's `await_condition` on `wal_down` (`ra_server:handle_follower(#append_entries_rpc{})`,
//! `handle_leader({command, …})`, `handle_await_condition/2`, `transfer_leadership`): what a follower and a
//! leader do when an append finds the WAL unregistered, while they wait, and when the wait ends.

mod cluster;

use cluster::*;
use raft_core::consensus::server::{Condition, Effect, Input, Message, Role, Timer};
use raft_core::{Bug, Bugs};
use raft_core::{LogIndex, Term};

/// A three-member cluster led by `a` in term 1, its noop committed everywhere.
fn led_by_a() -> Cluster {
    led_by_a_with(Bugs::none())
}

fn led_by_a_with(bugs: Bugs) -> Cluster {
    let mut c = Cluster::new(&["a", "b", "c"], bugs);
    c.deliver_all();
    assert_eq!(c.leaders(), vec![sid("a")]);
    c.effects.clear();
    c
}

/// `led_by_a`, then a command that finds `a`'s WAL down: `a` waits as leader; effects cleared.
fn a_waiting_for_its_wal() -> Cluster {
    a_waiting_for_its_wal_with(Bugs::none())
}

fn a_waiting_for_its_wal_with(bugs: Bugs) -> Cluster {
    let mut c = led_by_a_with(bugs);
    c.log("a").wal_down = true;
    c.command(&sid("a"), 1, 1, put("k", "v"));
    c.effects.clear();
    c
}

/// Effects of `name` since the last `clear`.
fn effects_of(c: &Cluster, name: &str) -> Vec<Effect> {
    c.effects.iter().filter(|(n, _)| n.0 == name).map(|(_, e)| e.clone()).collect()
}

fn sends(fx: &[Effect]) -> Vec<(String, Message)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send { to, msg } => Some((to.0.clone(), msg.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_follower_whose_append_finds_the_wal_down_waits_silently_until_a_message_after_it_is_back() {
    let mut c = led_by_a();
    let before = c.log_entries("b").len();
    c.log("b").wal_down = true;
    c.command(&sid("a"), 1, 1, put("k", "v"));
    c.deliver_all();
    assert_eq!(c.server("b").awaiting_condition(), Some(Condition::WalDown));
    assert_eq!(c.log_entries("b").len(), before, "nothing appended");
    assert!(sends(&effects_of(&c, "b")).is_empty(), "no reply while the WAL is down");
    // A heartbeat while it is still down is dropped too.
    c.fire("a", Timer::Heartbeat);
    c.deliver_all();
    assert_eq!(c.server("b").awaiting_condition(), Some(Condition::WalDown));
    // Back: the next message ends the wait and is handled; the leader's resend reaches it.
    c.log("b").wal_down = false;
    c.fire("a", Timer::Heartbeat);
    c.deliver_all();
    assert_eq!(c.server("b").awaiting_condition(), None);
    c.fire("a", Timer::Heartbeat);
    c.deliver_all();
    assert_eq!(c.log_entries("b"), c.log_entries("a"), "caught up");
}

#[test]
fn a_follower_still_blocked_after_thirty_seconds_becomes_a_plain_follower() {
    let mut c = led_by_a();
    c.log("b").wal_down = true;
    c.command(&sid("a"), 1, 1, put("k", "v"));
    c.deliver_all();
    c.effects.clear();
    c.fire("b", Timer::AwaitCondition);
    assert_eq!(c.server("b").awaiting_condition(), None);
    let fx = effects_of(&c, "b");
    assert!(sends(&fx).is_empty(), "Ra's wal_down wait has no timeout effects: {fx:?}");
    assert!(fx.iter().any(|e| matches!(e, Effect::SetTimer { timer: Timer::Election, .. })), "{fx:?}");
}

#[test]
fn a_leader_whose_append_finds_the_wal_down_turns_the_client_away_and_waits() {
    let mut c = led_by_a();
    let before = c.log_entries("a").len();
    c.log("a").wal_down = true;
    c.command(&sid("a"), 1, 1, put("k", "v"));
    assert_eq!(c.server("a").awaiting_condition(), Some(Condition::LeaderWalDown));
    assert_eq!(c.log_entries("a").len(), before, "not appended");
    let fx = effects_of(&c, "a");
    assert!(fx.iter().any(|e| matches!(e, Effect::Redirect { leader: None, .. })), "{fx:?}");
    assert!(fx.iter().any(|e| matches!(e, Effect::SetTimer { timer: Timer::AwaitCondition, after_ms: 5_000 })));
    // While it waits: commands are turned away, its tick sends nothing.
    c.effects.clear();
    c.command(&sid("a"), 1, 2, put("k", "w"));
    c.fire("a", Timer::Heartbeat);
    let fx = effects_of(&c, "a");
    assert!(sends(&fx).is_empty(), "{fx:?}");
    assert!(fx.iter().any(|e| matches!(e, Effect::Redirect { request: 2, leader: None, .. })), "{fx:?}");
    assert!(fx.iter().any(|e| matches!(e, Effect::SetTimer { timer: Timer::Heartbeat, .. })), "the tick goes on");
    // Back before the 5 s: the next message ends the wait, still leader, and commands are taken again.
    c.log("a").wal_down = false;
    c.command(&sid("b"), 9, 9, get("k")); // a redirect, nothing for `a`
    c.input(&sid("a"), Input::Message { from: sid("b"), msg: Message::PreVoteReply { term: Term(1), granted: false } });
    assert_eq!((c.server("a").awaiting_condition(), c.server("a").role()), (None, &Role::Leader));
    c.command(&sid("a"), 1, 3, put("k", "x"));
    c.deliver_all();
    c.fire("a", Timer::Heartbeat);
    c.deliver_all();
    assert!(c.replies().iter().any(|(client, request, _)| (*client, *request) == (1, 3)), "{:?}", c.replies());
}

#[test]
fn a_leader_still_without_its_wal_after_five_seconds_hands_its_leadership_to_its_first_peer() {
    let mut c = a_waiting_for_its_wal();
    c.fire("a", Timer::AwaitCondition);
    // `b` is the first peer and up to date: it is told to campaign, and `a` waits for a newer leader.
    let fx = effects_of(&c, "a");
    assert_eq!(sends(&fx), vec![("b".to_owned(), Message::ElectionTimeout)]);
    assert_eq!(c.server("a").awaiting_condition(), Some(Condition::TransferLeadership));
    assert_eq!(c.server("a").role(), &Role::Leader);
    // b campaigns; its vote request ends a's wait (any vote request does, as a follower), and b leads;
    // b's noop then finds a's WAL still down, so a waits again, now as a follower.
    c.deliver_all();
    assert_eq!(c.leaders(), vec![sid("b")]);
    assert_eq!((c.server("a").role(), c.server("a").current_term()), (&Role::Follower, Term(2)));
    assert_eq!(c.server("a").awaiting_condition(), Some(Condition::WalDown));
}

#[test]
fn a_transferring_leader_follows_the_first_append_of_a_newer_term() {
    let mut c = a_waiting_for_its_wal();
    c.fire("a", Timer::AwaitCondition);
    assert_eq!(c.server("a").awaiting_condition(), Some(Condition::TransferLeadership));
    c.network.clear();
    // An append of its own term does not end the wait; one of a newer term does, as a follower.
    for (term, waits) in [(Term(1), true), (Term(2), false)] {
        let msg = Message::AppendEntries {
            term,
            prev_index: LogIndex(1),
            prev_term: Term(1),
            entries: vec![],
            commit: LogIndex(1),
        };
        c.input(&sid("a"), Input::Message { from: sid("c"), msg });
        assert_eq!(c.server("a").awaiting_condition().is_some(), waits, "an append of term {term:?}");
    }
    assert_eq!((c.server("a").role(), c.server("a").leader()), (&Role::Follower, Some(&sid("c"))));
}

#[test]
fn a_waiting_leader_asked_for_its_vote_steps_down_and_answers_as_a_follower() {
    let mut c = a_waiting_for_its_wal();
    let (li, lt) = (LogIndex(1), Term(1));
    c.input(
        &sid("a"),
        Input::Message { from: sid("c"), msg: Message::RequestVote { term: Term(2), last_index: li, last_term: lt } },
    );
    assert_eq!((c.server("a").role(), c.server("a").awaiting_condition()), (&Role::Follower, None));
    let fx = effects_of(&c, "a");
    assert!(fx.iter().any(|e| matches!(e, Effect::CancelTimer(Timer::Heartbeat))), "{fx:?}");
    assert_eq!(
        sends(&fx),
        vec![("c".to_owned(), Message::RequestVoteReply { term: Term(2), granted: true })],
        "c's log is as long as a's"
    );
}

/// Ra's `process_pre_vote(await_condition, …)` takes a pre-vote's higher term without leaving the
/// wait, and the leader's wait then ends in `leader`: it leads on in a term it never won
/// (`waiting-leader-takes-term`). Fixed, a waiting leader that learns of a higher term steps down and
/// answers the pre-vote as a follower; the end of the wait then finds no leader to go back to.
#[test]
fn a_waiting_leader_told_of_a_higher_term_by_a_pre_vote() {
    struct Case {
        bugs: Bugs,
        waits_after_the_pre_vote: Option<Condition>,
        after_the_wait: (Role, Term),
    }
    let cases = [
        Case {
            bugs: Bugs::of(&[Bug::WaitingLeaderTakesTerm]),
            waits_after_the_pre_vote: Some(Condition::LeaderWalDown),
            after_the_wait: (Role::Leader, Term(3)),
        },
        Case { bugs: Bugs::none(), waits_after_the_pre_vote: None, after_the_wait: (Role::Follower, Term(3)) },
    ];
    for case in cases {
        let mut c = a_waiting_for_its_wal_with(case.bugs.clone());
        c.input(
            &sid("a"),
            Input::Message {
                from: sid("c"),
                msg: Message::PreVote { term: Term(3), last_index: LogIndex(1), last_term: Term(1) },
            },
        );
        let fx = effects_of(&c, "a");
        assert!(fx.contains(&Effect::PersistTermAndVote { term: Term(3), voted_for: None }), "{fx:?}");
        assert_eq!(sends(&fx), vec![("c".to_owned(), Message::PreVoteReply { term: Term(3), granted: true })]);
        assert_eq!(c.server("a").awaiting_condition(), case.waits_after_the_pre_vote, "{:?}", case.bugs);
        c.log("a").wal_down = false;
        c.fire("a", Timer::AwaitCondition);
        let (role, term) = (c.server("a").role().clone(), c.server("a").current_term());
        assert_eq!((role, term), case.after_the_wait, "{:?}", case.bugs);
    }
}
