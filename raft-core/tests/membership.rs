//! Membership changes as Ra 3.1.10 makes them: one at a time through cluster-change entries that take
//! effect when appended, promotion of a `promotable` member once caught up, a leader that removes
//! itself, the revert of an overwritten change, non-voters that never campaign, and recovery of a
//! change from the uncommitted tail.

mod cluster;

use cluster::{Cluster, config, put, sid};
use raft_core::Bugs;
use raft_core::consensus::mem_log::MemLog;
use raft_core::consensus::server::{
    Effect, EntryBody, Input, Membership, MembershipChange, MembershipRefusal, Message, Role, Server, Timer,
    decode_cluster, encode_cluster,
};
use raft_core::{LogIndex, Term};

fn join(id: &str, membership: Membership) -> Input {
    Input::ChangeMembership(MembershipChange::Join { id: sid(id), membership })
}

fn leave(id: &str) -> Input {
    Input::ChangeMembership(MembershipChange::Leave { id: sid(id) })
}

/// The membership replies `name` produced, in order.
fn replies(c: &Cluster, name: &str) -> Vec<Result<LogIndex, MembershipRefusal>> {
    c.effects
        .iter()
        .filter(|(n, _)| n.0 == name)
        .filter_map(|(_, e)| match e {
            Effect::MembershipReply { result, .. } => Some(*result),
            _ => None,
        })
        .collect()
}

fn members(c: &Cluster, name: &str) -> Vec<(String, Membership)> {
    c.server(name).cluster().iter().map(|(id, m)| (id.0.clone(), *m)).collect()
}

/// A cluster of `initial` whose leader has applied its term's noop (changes permitted).
fn settled(initial: &[&str], extra: &[&str]) -> (Cluster, String) {
    let mut c = Cluster::new(initial, Bugs::none());
    // Servers started later with the whole future cluster as their initial members (Ra's
    // `ra:start_server` for a member about to be added).
    for name in extra {
        let mut all: Vec<&str> = initial.to_vec();
        all.push(name);
        let mut log = MemLog::new();
        let (s, _) =
            Server::recover(config(name, &all, Bugs::none()), Term(0), None, LogIndex(0), None, &mut log).unwrap();
        c.servers.insert(sid(name), s);
        c.logs.insert(sid(name), log);
    }
    let leader = c.elect();
    c.run_until(|c| c.servers[&leader].cluster_change_permitted());
    (c, leader.0)
}

#[test]
fn entry_and_snapshot_forms_round_trip() {
    let cluster = [
        (sid("a"), Membership::Voter),
        (sid("b"), Membership::Promotable { target: LogIndex(17) }),
        (sid("c"), Membership::NonVoter),
    ]
    .into_iter()
    .collect();
    let body = EntryBody::ClusterChange { cluster };
    assert_eq!(EntryBody::decode(&body.encode()), Some(body.clone()));
    let EntryBody::ClusterChange { cluster } = body else { unreachable!() };
    assert_eq!(decode_cluster(&encode_cluster(&cluster)), cluster);
    // A voters-only cluster keeps the plain names a snapshot always held.
    let voters = [(sid("a"), Membership::Voter), (sid("b"), Membership::Voter)].into_iter().collect();
    assert_eq!(encode_cluster(&voters), vec!["a".to_owned(), "b".to_owned()]);
}

#[test]
fn a_promotable_member_catches_up_and_is_promoted_by_the_leader() {
    let (mut c, leader) = settled(&["a", "b", "c"], &["d"]);
    for r in 1..=5 {
        c.command(&sid(&leader), 1, r, put("k", "v"));
    }
    c.input(&sid(&leader), join("d", Membership::Promotable { target: LogIndex(0) }));
    let appended = replies(&c, &leader);
    let [Ok(at)] = appended[..] else { panic!("one join appended: {appended:?}") };
    // In force on the leader at once, as a non-voter that must reach the change's own index.
    assert_eq!(c.server(&leader).cluster()[&sid("d")], Membership::Promotable { target: at });
    c.run_until(|c| c.servers.values().all(|s| s.cluster().get(&sid("d")) == Some(&Membership::Voter)));
    for name in ["a", "b", "c", "d"] {
        assert_eq!(members(&c, name).len(), 4, "{name} knows every member");
    }
    assert_eq!(c.server("d").membership(), Membership::Voter);
    assert!(c.log_entries("d").len() >= at.0 as usize, "d holds the log up to its promotion target");
}

#[test]
fn one_change_at_a_time() {
    let (mut c, leader) = settled(&["a", "b", "c"], &["d", "e"]);
    c.auto_write = false;
    c.input(&sid(&leader), join("d", Membership::Voter));
    c.input(&sid(&leader), join("e", Membership::Voter));
    c.input(&sid(&leader), leave("zz"));
    let r = replies(&c, &leader);
    assert!(r[0].is_ok(), "{r:?}");
    assert_eq!(r[1..], [Err(MembershipRefusal::NotPermitted), Err(MembershipRefusal::NotPermitted)]);
    c.auto_write = true;
    let l = sid(&leader);
    c.write(&l);
    c.run_until(|c| c.servers[&l].cluster_change_permitted());
    c.input(&sid(&leader), join("d", Membership::Voter));
    c.input(&sid(&leader), leave("zz"));
    assert_eq!(replies(&c, &leader)[3..], [Err(MembershipRefusal::AlreadyMember), Err(MembershipRefusal::NotMember)]);
    let follower = ["a", "b", "c"].into_iter().find(|n| *n != leader).unwrap();
    c.input(&sid(follower), leave("d"));
    assert_eq!(replies(&c, follower), [Err(MembershipRefusal::NotLeader)]);
}

#[test]
fn a_removed_member_is_not_counted_and_no_longer_replicated_to() {
    let (mut c, leader) = settled(&["a", "b", "c"], &[]);
    let gone = ["a", "b", "c"].into_iter().find(|n| *n != leader).unwrap();
    c.input(&sid(&leader), leave(gone));
    c.run_until(|c| c.servers[&sid(&leader)].cluster_change_permitted());
    assert!(!c.server(&leader).cluster().contains_key(&sid(gone)));
    assert!(!c.server(&leader).peers().contains_key(&sid(gone)));
    // Cut the removed member off: the two left commit on their own (a majority of two voters is two).
    c.isolated.insert(sid(gone));
    let before = c.server(&leader).commit_index();
    c.command(&sid(&leader), 1, 1, put("k", "v"));
    c.deliver_all();
    assert!(c.server(&leader).commit_index() > before);
    // Nothing more goes to it.
    let sent_after = c.network.iter().filter(|(_, to, _)| to.0 == gone).count();
    assert_eq!(sent_after, 0);
}

#[test]
fn a_leader_that_removes_itself_stops_once_the_change_is_committed() {
    let (mut c, leader) = settled(&["a", "b", "c"], &[]);
    c.input(&sid(&leader), leave(&leader));
    assert_eq!(c.server(&leader).role(), &Role::Leader, "it leads the new cluster until the change commits");
    c.deliver_until(|c| c.effects.iter().any(|(n, e)| n.0 == leader && *e == Effect::Stop));
    let (at, _) = c.server(&leader).cluster_index_term();
    assert!(c.server(&leader).commit_index() >= at);
}

#[test]
fn a_follower_reverts_a_change_whose_entry_a_new_leader_overwrote() {
    let names = ["a", "b", "c", "d", "e"];
    let (mut c, leader) = settled(&names, &[]);
    c.deliver_all();
    c.network.clear();
    let others: Vec<&str> = names.iter().copied().filter(|n| *n != leader).collect();
    let (b, rest) = (others[0], &others[1..]);
    // The change reaches one follower only.
    c.input(&sid(&leader), leave(rest[0]));
    c.deliver_between(&leader, b);
    c.network.clear();
    assert!(!c.server(b).cluster().contains_key(&sid(rest[0])), "adopted when appended");
    let previous = c.server(rest[0]).cluster().clone();
    // The old leader and b are cut off; the other three elect a leader that overwrites the index.
    c.isolated.insert(sid(&leader));
    c.isolated.insert(sid(b));
    let new_leader = c.elect();
    assert!(rest.contains(&new_leader.0.as_str()));
    for r in 1..=3 {
        c.command(&new_leader, 1, r, put("k", "v"));
    }
    c.deliver_all();
    c.isolated.remove(&sid(b));
    c.run_until(|c| {
        c.servers[&sid(b)].leader() == Some(&new_leader) && c.servers[&sid(b)].commit_index() > LogIndex(3)
    });
    assert_eq!(c.server(b).cluster(), &previous, "b went back to the configuration before the overwritten entry");
}

#[test]
fn a_non_voter_never_campaigns_nor_votes() {
    let (mut c, leader) = settled(&["a", "b", "c"], &["d"]);
    c.input(&sid(&leader), join("d", Membership::NonVoter));
    c.run_until(|c| c.servers[&sid("d")].membership() == Membership::NonVoter);
    c.network.clear();
    c.fire("d", Timer::Election);
    assert!(c.network.is_empty(), "no pre-vote from a non-voter");
    assert_eq!(c.server("d").role(), &Role::Follower);
    c.input(
        &sid("d"),
        Input::Message {
            from: sid("a"),
            msg: Message::PreVote { term: Term(99), last_index: LogIndex(99), last_term: Term(99) },
        },
    );
    c.input(
        &sid("d"),
        Input::Message {
            from: sid("a"),
            msg: Message::RequestVote { term: Term(99), last_index: LogIndex(99), last_term: Term(99) },
        },
    );
    assert!(c.network.is_empty(), "a non-voter ignores vote requests");
    assert!(c.server("d").current_term() < Term(99));
}

#[test]
fn recovery_adopts_a_change_from_the_uncommitted_tail() {
    let (mut c, leader) = settled(&["a", "b", "c"], &["d"]);
    c.auto_write = false;
    c.input(&sid(&leader), join("d", Membership::Voter));
    c.write(&sid(&leader));
    // The leader restarts before anyone else saw the change: it is its only copy, uncommitted.
    let mut cfg = config(&leader, &["a", "b", "c"], Bugs::none());
    cfg.rng_seed = 7;
    c.crash_restart(&leader, cfg);
    assert_eq!(c.server(&leader).cluster()[&sid("d")], Membership::Voter);
    assert!(c.server(&leader).cluster_change_permitted());
}

#[test]
fn a_leader_removed_from_its_configuration_commits_with_a_majority_of_the_new_voters() {
    // Five members, one removed: four voters. The leader removes itself: three voters, a quorum of two.
    // Ra's `agreed_commit` takes the third highest of the four indexes it counts (the leader's own and
    // the three voters'): with one voter reachable, the leader's copy and that voter's are only two,
    // and the entry is not committed; with two reachable it is — by a majority of the new voters.
    for (reachable, commits) in [(1, false), (2, true)] {
        let names = ["a", "b", "c", "d", "e"];
        let mut c = Cluster::new(&names, Bugs::none());
        let leader = c.elect();
        c.run_until(|c| c.servers[&leader].cluster_change_permitted());
        let others: Vec<&str> = names.iter().copied().filter(|n| *n != leader.0).collect();
        c.input(&leader, leave(others[3]));
        c.run_until(|c| c.servers[&leader].cluster_change_permitted());
        c.input(&leader, leave(&leader.0));
        for n in &others[reachable..] {
            c.isolated.insert(sid(n));
        }
        c.deliver_all();
        let (at, _) = c.server(&leader.0).cluster_index_term();
        assert_eq!(c.server(&leader.0).commit_index() >= at, commits, "{reachable} voters reachable");
    }
}
