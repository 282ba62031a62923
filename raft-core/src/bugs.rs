//! Bug switches: each restores one code path Ra had before a fix, in place, so that the harness can
//! show it would have found the bug (PR 589 first).
//!
//! Why a closed enum: a switch is read by exactly one code path in `raft-core`; checkers, the engine and
//! the scenarios never read it. The set is part of the node configuration and is empty by default.

use std::collections::BTreeSet;
use std::fmt;

/// One of Ra's pre-fix behaviours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bug {
    /// PR 589 fix 1: an unreadable snapshot `indexes` file crashes server init (`badmatch`).
    IndexesBadmatch,
    /// PR 589 fix 2: WAL recovery re-looks-up (re-scans) the shared mem table for every file instead of
    /// carrying its own table state across files.
    WalRecoveryRescan,
    /// PR 589 fix 3: init deletes segments by comparing `(name, range)` pairs instead of names.
    SegrefTupleDelete,
    /// PR 589 fix 4: a leader enforcing leadership skips peers in snapshot backoff.
    BackoffPeerSkipped,
    /// Ra PR 614: a registered uid whose config is missing is not unregistered at pre-init.
    ConfigOrphanRegistration,
    /// PR 589 fix 5 (reverted by PR 614): a new server registers only after its log init, so a WAL
    /// roll-over in between drops its mem tables.
    RegisterAfterInit,
    /// PR 589 fix 6: the config rename is not followed by a directory fsync.
    ConfigNoDirSync,
    /// Found by this harness, present in Ra 3.1.10: a follower's snapshot install (`complete_accept`)
    /// does not fsync `snapshots/`, so the new snapshot can vanish in a power cut while the deletions it
    /// caused survive.
    AcceptNoParentSync,
    /// Found by this harness, present in Ra 3.1.10: registering a server inserts into the names store
    /// without a sync (durable only at the 500 ms auto-save), so a power cut soon after a new server
    /// started leaves it unregistered — and WAL recovery skips, then drops, its acknowledged entries.
    RegistrationNotSynced,
    /// Found by this harness, present in Ra 3.1.10: the segment writer unlinks a flushed WAL file with no
    /// directory fsync, so unlinks can become durable out of order; the replay of the files around a lost
    /// middle one re-flushes into the same segment and "later wins" drops the middle file's entries.
    WalUnlinkNoDirSync,
    /// Found by this harness, Ra's segment format (3.1.10): index records carry no checksum and are
    /// trusted up to the first all-zero record, so one torn by a power cut can read as index 0, stretch
    /// the segment's range down to 0 and make init delete every older segment.
    SegmentIndexUnchecked,
    /// Found by this harness, present in Ra 3.1.10 (fix 1 covers only an unreadable file): a missing
    /// snapshot `indexes` file reads as "no live indexes", though a power cut can lose it while the
    /// snapshot survives; the log then forgets entries the machine still reads.
    IndexesMissingTrusted,
    /// Found by this harness, present in Ra 3.1.10 (`handle_follower(#install_snapshot_rpc{})` checks
    /// only `SnapIdx > LastApplied`): a follower accepts a snapshot below its last *written* index and
    /// the install discards the written entries after it — entries the leader may already have counted
    /// towards a commit. It takes a lost message (Ra sends pipelined RPCs with `nosuspend`, which drops
    /// them when the distribution buffer is busy): the follower rejects an append after a gap, the leader
    /// falls back to a snapshot, the follower meanwhile accepts the resent entries, the leader commits
    /// with its acknowledgement, and the stale snapshot then truncates them; a minority holds the
    /// committed entry and a lagging majority can elect the follower (`leader-completeness`). The fix
    /// (Raft §7): when the log holds the snapshot's last entry (same term) at or below its last written
    /// index, the follower keeps its log and tells the leader where it is instead of installing.
    SnapshotOverWrittenLog,
    /// Found by this harness, present in Ra 3.1.10 (`ra_log:init` takes the log's last index from the
    /// mem table and segment ranges above the snapshot): a follower installs a snapshot while it still
    /// holds a stale suffix from an older term (say it led term 1 alone); the install only forgets the
    /// suffix in memory, so after a crash recovery brings it back above the newer snapshot. The log then
    /// ends in the older term, so the node votes like a term-1 node and can help elect a leader that
    /// lacks entries committed in the snapshot's term (`written-survives` sees the regression at the
    /// reboot). The fix ends the recovered log before the first entry whose term is lower than its
    /// predecessor's (terms never decrease along a log; the snapshot's term counts for its index).
    StaleTailResurrected,
    /// Found by this harness, present in Ra 3.1.10 (`ra_log_segment_writer:open_file`): a segment file
    /// whose header is missing (empty file) is deleted and recreated, but any other unreadable header is
    /// fatal. A power cut before a new segment's first fsync can keep the file's size and directory
    /// entry but not its bytes — an all-zero header (XFS and ext4 with delayed allocation do this) — and
    /// the node then cannot boot, though the file holds nothing durable (its entries are still in the
    /// WAL, which is unlinked only after the segment is synced). Under `unsynced_garbage` the header can
    /// also be garbage the drive left in the sector it was writing (swarm seed 8588). The fix treats an
    /// all-zero header, and a bad header in a file no longer than a header (Ra syncs the header right
    /// after creating the file, so such a file never held an entry), like a missing one.
    SegmentZeroHeaderFatal,
    /// Found by this harness, Ra before 3.0.0 (fixed by the conditional release cursor, commit c57a166b,
    /// whose `{written, Idx}` condition Ra's own KV machine uses): a server snapshots its machine at the
    /// last applied index though it may not have written that entry itself — a follower applies what it
    /// has only appended (`min(last index, commit index)`), a leader what the others have written. The
    /// snapshot names the entry as live; a power cut before the WAL's fsync loses the entry but keeps
    /// the synced snapshot, and the recovered log lacks an entry the machine still reads
    /// (`storage-error`, `missing_key`). The fix defers the snapshot until the index is written here.
    SnapshotBeforeWritten,
    /// Found by this harness's sweep, present in Ra 3.1.10 (`validate_checksum(0, _, _, _) -> ok`): WAL
    /// recovery does not check a record whose checksum field is zero. A power cut that tears an append
    /// so that only the first bytes of a record's header reach the disk (the rest of the sector run reads
    /// as zeros within the new file size) leaves a cached-writer header followed by zeros: checksum 0,
    /// length 0, index 0, term 0. Ra accepts it for the file's first writer (index 0 is not below the
    /// smallest live index of a server with no snapshot) and `binary_to_term(<<>>)` throws, so the node
    /// cannot boot, though everything acknowledged is intact before the torn record. The fix verifies a
    /// zero checksum like any other when the WAL computes checksums (it always does here), so the torn
    /// record fails its check and, followed by zeros, is dropped as the torn tail.
    WalZeroChecksumUnchecked,
    /// Found by this harness (a clean run of `recovery/snapshot-ahead-of-slow-wal` with more isolations),
    /// Ra before 3.0.0 (fixed by commit fd892306, "delay install snapshot completion"): a follower
    /// completes a snapshot's install on its last chunk while the live entries its pre-phase wrote
    /// sparsely are still on their way through the WAL. The install syncs the snapshot; a power cut then
    /// keeps the snapshot and loses a live entry the machine still reads (`storage-error`,
    /// `missing_key`). The fix, Ra's `{awaiting_pending, …}` phase, holds the last chunk (no answer) until
    /// the log has nothing pending, then completes it.
    InstallBeforeLiveWritten,
    /// Found by this harness with disk errors, present in Ra 3.1.10 (`ra_log_segment_writer`: a restarted
    /// segment writer opens the server's newest segment and appends to it): when a segment's fsync fails
    /// (EIO), Linux marks the pages it could not write clean and forgets them, while the page cache still
    /// shows them (fsyncgate). The segment writer crashes; its restart re-flushes the same WAL file,
    /// appending after the index records it reads back from the cache, fsyncs and deletes the WAL file.
    /// The records of the failed flush never reach the disk, so its index holds a run of zeros before
    /// the re-flushed records; a power cut later makes the zeros the index's end, and the entries after
    /// them — acknowledged, their WAL file gone — are lost (`written-survives`). The fix: a segment writer
    /// never appends to a segment an earlier segment writer process wrote; its first flush of each
    /// server after a (re)start opens a successor.
    SegmentReusedAfterFailedSync,
    /// Found by this harness with disk errors, present in Ra 3.1.10 (`ra_log:init`: the last written index
    /// is `max(LastWalIdx, …)` and its term `ra_lib:unwrap(fetch_term(…))`): after a failed fdatasync the
    /// WAL crashes, and its restart reads the file back from the page cache, which still shows the record
    /// (fsyncgate), takes its index as the writer's and persists it in `writers.snapshot`. A power cut
    /// then loses the record but keeps `writers.snapshot`: the WAL's last index for the writer names an
    /// entry no file holds, `fetch_term` answers `undefined` and `unwrap` crashes the server's init at
    /// every restart — the member never comes back (`node-boots`, `missing_key`). raft-core takes the last
    /// entry the log does hold as its last written one.
    WrittenBeyondLog,
    /// Found by this harness with garbage in the sectors in flight at a power cut (`unsynced_garbage`),
    /// present in Ra 3.1.10 (`ra_log_wal:is_last_record`): WAL recovery drops a record that fails its
    /// checksum only if the 13 bytes after it are zeros, and otherwise refuses to boot
    /// (`wal_checksum_validation_failure`, reported by RabbitMQ users as "BOOT FAILED"). A drive that
    /// loses power mid-write can leave garbage in the sectors it was writing — sectors that held no
    /// synced data — so the interrupted batch, never acknowledged, is followed by garbage and the node
    /// cannot boot though nothing it acknowledged is damaged (`node-boots`). The same when a drive
    /// persists a later sector of the batch and not an earlier one: records that verify follow the bad
    /// one. The fix ends recovery at the first record that fails its checksum: only the last, unsynced
    /// batch can hold it under power loss.
    WalGarbageTailFatal,
    /// Found by this harness with disk errors, present in Ra 3.1.10 (`ra_log_wal:recover_wal`, whose
    /// `recover_wal_chunks` reads each WAL file with `file:read`, through the page cache): an fdatasync
    /// of the WAL fails and the WAL crashes; the page cache still shows the batch, whose pages Linux has
    /// marked clean (fsyncgate), so it never reaches the disk. The restarted WAL's recovery reads it,
    /// hands it to the segment writer, which makes it durable in a segment, and the server takes it as
    /// written (`ra_log:handle_event({segments, …})` raises the last written index to the segments').
    /// The WAL file on disk still ends before the batch; if power is cut before the segment writer
    /// deletes the file, the next boot recovers and flushes the file again, and the shorter flush
    /// supersedes the segment's tail (a lower index truncates what is above it): an entry the server
    /// reported written is gone (`written-survives`). The fix: recovery rewrites and syncs each file it
    /// read before acting on it.
    WalRecoveryTrustsPageCache,
    /// Found by this harness with disk errors, present in Ra 3.1.10 (`ra_log_segment_writer:
    /// append_to_segment/6`, "an expected index was not found in the mem table": `exit({missing_index,
    /// …})`): the segment writer flushes a WAL file and notifies the server, then fails to unlink the
    /// file (or crashes) and the log tier restarts. The new WAL's post-boot recovery hands the file to
    /// the new segment writer with the entries its mem tables still hold — while the server, handling the
    /// first flush's `segments` event, deletes them (`ra_mt:record_flushed`). The new segment writer finds
    /// them gone and exits: one more log-tier restart, which counts against `ra_log_sup`'s intensity
    /// (`node-boots` here, as any crash of Ra's own code during a recovery). The fix skips an index a
    /// registered server's table no longer holds: a server deletes only what a flush made durable, a
    /// snapshot covers or an overwrite replaced, and the checkers judge whether anything was lost.
    MissingIndexExit,
    /// Found by this harness with disk errors, present in Ra 3.1.10 (`ra_log_wal:recover_wal/2`, which
    /// hands each recovered file to the segment writer in its fold and persists `writers.snapshot` only
    /// in the `roll_over` after it — "so that sequence tracking survives crashes even after all WAL files
    /// have been deleted by the segment writer"): the WAL restarts (a crash drops the append of entry 16
    /// from its mailbox), its recovery hands WAL 1 to the segment writer, and creating
    /// `writers.snapshot.tmp` fails; it restarts again, and meanwhile the segment writer flushes WAL 1 and
    /// deletes it. The next WAL finds no file and no writers snapshot: the server is an unknown writer,
    /// so its append of 17 (chained to 16) is taken without a gap. 17 is written and flushed, the server
    /// deletes its mem table up to 17 (`ra_mt:record_flushed`: "indexes are always written in order"),
    /// and entry 16 — appended, never written — is gone: `missing_key` when the machine reads it. The fix
    /// persists the writers before each recovered file goes to the segment writer.
    WritersUnpersistedAtHandover,
    /// Found by this harness's consensus tests once the follower replied as Ra does, present in Ra 3.1.10
    /// (`ra_server:handle_leader`: a success reply sets `next_index => max(NI, NextIdx)`, a failure whose
    /// last index is outside the leader's log `next_index => PeerNextIdx`, neither bounded by the
    /// leader's own log): a follower that holds a stale tail longer than the new leader's log — entries
    /// of an older term a validating append did not reach (`LogIsValidated = false`) — reports it when
    /// the WAL writes it, with a next index past the leader's last. The leader's next RPC to that peer
    /// reads the term of an entry it does not have (`make_rpc_effect`: `fetch_term` → `undefined`, then
    /// `?assert(PrevIdx < SnapIdx)` or a `case_clause`): the leader crashes. The fix never moves a peer's
    /// next index past the leader's last index + 1.
    NextIndexPastLog,
    /// Found by this harness's consensus tests once the follower replied as Ra does, present in Ra 3.1.10
    /// (`ra_server:handle_follower(#append_entries_rpc{})`, the `LogIsValidated = false` branch: "reply
    /// with success but only up to the last index we already had", `last_index = max(LastApplied,
    /// LastValidIdx)`): an append whose entries the follower already holds, when its log goes on past
    /// them (a leader probing from a next index it lowered after a failure, Ra's tick sends one entry),
    /// is answered with success up to the last of them — written or not; `ra_log:exists` looks in the
    /// mem table. The leader takes the reply's last index as the peer's match index
    /// (`match_index => max(MI, LastIdx)`) and commits with a follower that has not written the entry: a
    /// commit without a durable quorum (five members: the leader and one follower wrote index 2, a
    /// third only holds it in memory, and the leader commits it). The fix reports no more than the
    /// follower's last written index.
    UnvalidatedReplyUnwritten,
    /// Found by this harness (swarm seed 2278, no switch, once the follower followed Ra), present in Ra
    /// 3.1.10 (`ra_server:handle_follower(#append_entries_rpc{})`: an append with no entries whose
    /// previous index is below the follower's last "resets last index to match the leader",
    /// `ra_log:set_last_index(PLIdx)`): Ra's leader sends an RPC through a spawned process when the
    /// distribution buffer is busy (`ra_server_proc:handle_effect({send_rpc, …})`), so a later RPC sent
    /// directly can overtake it. An empty append (a tick, sent when the leader's log ended at 78) that
    /// arrives after the append of 79 cuts 79 from a follower that had written it and reported it; the
    /// leader had counted it, and the committed entry is left on two of five members
    /// (`commit-durability`). The fix keeps entries of the leader's own term after the previous index —
    /// the leader sent them after the empty append — and answers success up to that index only.
    StaleEmptyAppendTruncates,
    /// Ra 3.1.10's `make_all_rpcs` cancels a snapshot-backoff peer's retry timer and sends it a one-entry
    /// append, but leaves its status `snapshot_backoff`: a peer that needs no snapshot any more is then
    /// skipped by the pipeline and the ticks, and hears from the leader only at the next `make_all_rpcs`
    /// (a pre-vote reaching the leader) or a `nodeup` — one entry per election timeout here, nothing at
    /// all in Ra while the leader's process monitors keep the follower quiet. Found by swarm (seed 15904,
    /// `converges`: a follower one entry behind at the end of the liveness phase). The fix puts the peer
    /// back to normal replication.
    BackoffStatusKept,
    /// Found by this harness, present in Ra 3.1.10 (`ra_snapshot:find_snapshots` / `pick_first_valid`
    /// trust the newest snapshot that validates; `begin_accept` and the local write's job mark nothing
    /// as unfinished): a snapshot install (`complete_accept`) or local write that fails half-way — a read
    /// EIO before the directory fsyncs, or an fsync EIO whose lost pages the page cache still shows —
    /// leaves a `snapshot.dat` that validates from the cache. The server process restarts and trusts it,
    /// its WAL and segments below it are dropped, and a later power cut loses the snapshot: the log has
    /// a gap, and the node's last written index goes back (swarm seed 34916) or it cannot boot (seeds
    /// 43580, 61591). The fix marks a snapshot directory unfinished (an `accepting` file) from its mkdir
    /// until `snapshot.dat` is fsynced, removes the mark before the directory fsyncs (deleting the
    /// directory if one fails), skips a marked directory at init and fsyncs the trusted one's directories
    /// again there.
    UnfinishedSnapshotTrusted,
    /// Found by this harness, Ra's segment format (3.1.10): a segment index record (32 bytes at
    /// `8 + 32·k`) straddles a sector boundary every sixteenth slot, with its index, term and offset
    /// before the boundary and its length and checksum after. A power cut that keeps the first sector of
    /// the index write and not the second leaves a record that continues the previous one, with length 0
    /// and checksum 0; Ra's read skips a zero checksum (`ra_log_segment:validate_checksum(0, _) -> true`)
    /// and returns empty data, which its `binary_to_term` then refuses (`badarg`) wherever the entry is
    /// read. The segment is obsolete once the WAL replays the entry into a newer segment, but a snapshot
    /// unlinks both and a power cut that keeps only the newer one's unlink brings it back (swarm seed
    /// 90054: `log-shape`, the log serving an empty index 143 the member never wrote). The fix ends the
    /// parse at such a record (any index but 0, the one empty entry raft-core writes).
    SegmentEmptyRecordTrusted,
    /// Found by `sim hunt`, present in Ra 3.1.10: a leader waiting in `await_condition` for its WAL
    /// (`wal_down_condition`, `transition_to => leader`) answers a pre-vote with
    /// `process_pre_vote(await_condition, …)`, whose `update_term` takes the pre-vote's higher term, and
    /// stays waiting; once the WAL is back the wait ends in `leader` — in a term it never won. If another
    /// member won that term meanwhile, two leaders share it (`election-safety`; Ra's own
    /// `handle_leader(#append_entries_rpc{})` for the same term says "this should not happen" and
    /// exits). The fix: a waiting leader that learns of a higher term leads no more — it becomes a
    /// follower and answers the pre-vote as one, as Ra's wait does for a vote request.
    WaitingLeaderTakesTerm,
    /// Found by `sim hunt`, present in Ra 3.1.10 as far as its code reads: a snapshot receive with live
    /// entries first ends the follower's log at its last applied index (the init phase's
    /// `ra_log:set_last_index(LastApplied)`, in memory only), then the pre phase writes the live entries
    /// above it sparsely (`ra_log:write_sparse`) — one the log held, with the same term, included. If the
    /// server restarts before the install, nothing aborts the receive: the sparse entries are flushed
    /// into a segment whose range spans them and shadows the held entries after the rewritten one, and
    /// recovery's scan (`ra_server:recover`) ends the log at the first index it lacks — written,
    /// acknowledged entries lost (`written-survives`). The fix cuts the log after the highest live entry
    /// it holds with the same term (log matching vouches for everything up to it) and does not write
    /// that entry again.
    ReceiveCutLosesWritten,
    /// Found by `sim hunt`, present in Ra 3.1.10 as far as its code reads: a follower's server restarts
    /// (here its Ra system, after a disk-full WAL restart storm) between a snapshot's live phase and its
    /// last chunk, losing the live entries it had written sparsely but not yet made durable. The
    /// sender (the leader's process, which calls the follower by name) does not notice and sends the
    /// last chunk to the new server, which begins a receive there (`handle_follower(#install_snapshot_rpc{})`
    /// accepts any chunk numbered 0 or 1 but `pre`), never saw an `init` phase, so has
    /// `snapshot_has_live_indexes` unset, and installs at once (`complete_accept`,
    /// `ra_log:install_snapshot`): the machine names a live entry the log does not hold, and the
    /// next read of it fails (`missing_key`). The fix: before sealing a received snapshot, check that
    /// the log holds every live index it names; otherwise refuse it and abort the receive, so that the
    /// leader's next sender starts again with the live phase.
    InstallWithoutLiveEntries,
    /// Found by `sim hunt` (a plain swarm world, seed 11006591), present in Ra 3.1.10: a member removed
    /// by `ra:remove_member` that never received its removal keeps campaigning. Once it has become a
    /// candidate (here: a pre-vote granted before the removal was replicated), `handle_candidate(election_timeout)`
    /// calls a new election in a new term at every timeout, and nobody sends it anything that ends its
    /// candidacy (the leader no longer replicates to it). Ra's leader ignores its vote requests
    /// (`handle_leader(#request_vote_rpc{})`: `peer(Cand)` undefined), but the followers take its term
    /// (`handle_follower(#request_vote_rpc{})`), and the leader steps down at their next reply: the
    /// group churns through a term per election timeout for as long as the removed server runs
    /// (`converges`). The fix: a follower or candidate ignores a vote request or pre-vote from a server
    /// not in its configuration, as Ra's leader does.
    RemovedMemberDisrupts,
    /// Found by `sim hunt`, present in Ra 3.1.10: a candidate counts its own vote even when its
    /// configuration does not hold it. `call_for_election` casts `VoteForSelf` into the count, which
    /// `handle_pre_vote(#pre_vote_result{})` and `handle_candidate(#request_vote_result{})` compare with
    /// `required_quorum(Cluster)` — a majority of the configuration's voters only; and a server whose
    /// log removed it still takes itself for a voter (`get_membership` keeps the last known standing,
    /// `cluster_scan_fun` at recovery). A leader that removed itself, restarted before the removal
    /// committed, campaigned in the three-voter configuration that excludes it: one member's vote and
    /// its own made two, while the other two members elected another leader in the same term
    /// (`election-safety`). The fix counts only the votes of the configuration's voters.
    RemovedCandidateCountsItself,
    /// Found by `sim hunt`, present in Ra 3.1.10: a new leader's noop (`become(leader)` sends it as a
    /// `{command, Noop}` event) that finds the WAL down is dropped — `handle_leader({command, …})` answers
    /// `wal_down` to nobody and waits in `await_condition` (`wal_down_condition`) — and is never sent
    /// again when the WAL is back. Entries of earlier terms commit only through an entry of the current
    /// term, so the term commits nothing until a client's command arrives: an idle group is left with
    /// members that applied different indexes, and the commands waiting on those entries get no answer
    /// (`converges`). The fix appends the noop when the wait ends, if the term still has no entry.
    LeaderNoopDropped,
    /// Found by `sim hunt`, present in Ra 3.1.10: a follower keeps a configuration whose entry its log
    /// no longer holds. Ra reverts to `previous_cluster` only when an entry of another term is appended
    /// at the configuration's own index (`pre_append_log_follower`); an append that overwrites the log
    /// from a lower index — the new leader's log ends below the change — cuts the change's entry away
    /// (`ra_log:write`), and so does an empty append's `set_last_index`, with the configuration kept.
    /// Raft's rule is that a server uses the latest configuration in its log. A leader whose removal of
    /// n3 was cut away this way on both other members, each then leading in turn, kept replicating to
    /// two of three members as if n3 were gone; the second removed n1, was a configuration of one, and
    /// committed alone — while n1 and n3, whose configuration held all three, elected n1, which lacked
    /// that committed entry (`leader-completeness`). The fix reverts to the previous configuration when
    /// the log is cut at or below the configuration's index.
    ConfigKeptAfterTruncation,
    /// Found by `cargo xtask scale` (swarm seed 23291, no switch), present in Ra 3.1.10: a follower
    /// overwrites its log's tail (a new mem table, `ra_log:write`), and the WAL process dies (a segment
    /// writer crash restarts the log tier) with the overwrite still in its mailbox. The restarted WAL's
    /// `post_boot` recovery looks each record of its files up with `ra_mt:tid_for`, which walks on to
    /// the older table when the newest holds another term — so the overwritten record is found there
    /// and flushed to segments. The log's `{segments, …}` handler raises the last written index to the
    /// segments' last (the overwritten entry's index), and the resend (`tick` or the WAL's
    /// `resend_write`) starts after it: the overwrite at that index is never written, and the node's
    /// durable log keeps the old term under a committed entry (`log-matching`). When an earlier flush
    /// already took the record from the tables (a failed WAL unlink kept its file), Ra sets the writer's
    /// sequence to its index, with the same end. The fix keeps a record whose index the newest table
    /// holds at another term out of the flush and ends the writer's sequence before it, so the WAL asks
    /// for the overwrite again (or, when records the overwrite cut off follow it in the file and raise
    /// the sequence again, the log's check of what the WAL confirms resends it).
    WalRestartFlushesOverwritten,
    /// Found by `sim hunt` (seed 12, no switch), present in Ra 3.1.10 as far as its code reads: a
    /// follower installs a snapshot (280, live entry 277) above entries it had written (up to 279), and
    /// its WAL then restarts. The restarted WAL's recovery keeps the server's records from the smallest
    /// live index on, so its last record for the server (279) is below the log's last written index,
    /// the snapshot's (280). Five seconds on, `ra_log:tick`
    /// resends what is pending from the last written index + 1, chained to it; the WAL takes that for a
    /// gap (`ra_log_wal`'s `{in_seq, PrevIdx}` clause), sends `resend_write` from after its own last
    /// record once, and from then drops every write of that server (`out_of_seq`) until one chains to
    /// what it has. The log's `resend_from` refuses the request: it falls within `resend_window_seconds`
    /// of the tick's resend, to the same WAL process. Nothing asks again, so the follower writes nothing
    /// more — its appends and a later snapshot's live entries all wait — and the group never converges
    /// (`converges`). The fix lets a resend that starts below the last one's start go ahead within the
    /// window: the last one cannot have covered it.
    WalGapRequestIgnored,
    /// Found by `sim hunt` (seed 12, no switch), present in Ra 3.1.10 as far as its code reads: the WAL
    /// marks a server's writer `out_of_seq` when a write does not chain to its last index, sends
    /// `resend_write` once and drops the server's writes until the resend arrives; `roll_over` persists
    /// that state in `writers.snapshot`. If the WAL then dies before the log's resend reaches it (a
    /// full disk restarting it), the resend is lost with its mailbox, and the restarted WAL's
    /// `recover_wal/2` seeds its writers from the snapshot — still `out_of_seq`. It never asks again; the
    /// log has cast new appends to the new WAL, so `ra_log:tick` sees no restart to resend for: the
    /// server writes nothing more (`converges`). The fix: a restarted WAL takes a writer it finds out of
    /// sequence as in sequence at its last index, so the next write that does not chain to it asks anew.
    WalRestartKeepsOutOfSeq,
    /// Found by this harness's bit rot, present in Ra 3.1.10: a segment read through
    /// `ra_log_segment:read_sparse` (`read_sparse_no_checks`) does not validate the entry's CRC — only
    /// `fold` does. `sparse_read`, `fetch` and `partial_read` read that way, and so does the snapshot
    /// sender's pre-phase (`send_pre_snapshot_entries` → `read_entries` → `partial_read`): a live entry
    /// whose data rotted on the leader's medium is sent to the follower as is, which writes it with a
    /// fresh, valid CRC — the corruption is now a replica's durable data. The fix: check the CRC on
    /// every segment read, as `fold` does.
    SparseReadCrcUnchecked,
}

impl Bug {
    /// Every switch: PR 589's seven in its order, then the ones this harness found.
    pub const ALL: [Bug; 41] = [
        Bug::IndexesBadmatch,
        Bug::WalRecoveryRescan,
        Bug::SegrefTupleDelete,
        Bug::BackoffPeerSkipped,
        Bug::ConfigOrphanRegistration,
        Bug::RegisterAfterInit,
        Bug::ConfigNoDirSync,
        Bug::AcceptNoParentSync,
        Bug::RegistrationNotSynced,
        Bug::WalUnlinkNoDirSync,
        Bug::SegmentIndexUnchecked,
        Bug::IndexesMissingTrusted,
        Bug::SnapshotOverWrittenLog,
        Bug::StaleTailResurrected,
        Bug::SegmentZeroHeaderFatal,
        Bug::SnapshotBeforeWritten,
        Bug::WalZeroChecksumUnchecked,
        Bug::InstallBeforeLiveWritten,
        Bug::SegmentReusedAfterFailedSync,
        Bug::WrittenBeyondLog,
        Bug::WalGarbageTailFatal,
        Bug::WalRecoveryTrustsPageCache,
        Bug::MissingIndexExit,
        Bug::WritersUnpersistedAtHandover,
        Bug::NextIndexPastLog,
        Bug::UnvalidatedReplyUnwritten,
        Bug::StaleEmptyAppendTruncates,
        Bug::BackoffStatusKept,
        Bug::UnfinishedSnapshotTrusted,
        Bug::SegmentEmptyRecordTrusted,
        Bug::WaitingLeaderTakesTerm,
        Bug::ReceiveCutLosesWritten,
        Bug::InstallWithoutLiveEntries,
        Bug::RemovedMemberDisrupts,
        Bug::RemovedCandidateCountsItself,
        Bug::LeaderNoopDropped,
        Bug::ConfigKeptAfterTruncation,
        Bug::WalRestartFlushesOverwritten,
        Bug::WalGapRequestIgnored,
        Bug::WalRestartKeepsOutOfSeq,
        Bug::SparseReadCrcUnchecked,
    ];

    /// The switch's CLI name (`--bug NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Bug::IndexesBadmatch => "indexes-badmatch",
            Bug::WalRecoveryRescan => "wal-recovery-rescan",
            Bug::SegrefTupleDelete => "segref-tuple-delete",
            Bug::BackoffPeerSkipped => "backoff-peer-skipped",
            Bug::ConfigOrphanRegistration => "config-orphan-registration",
            Bug::RegisterAfterInit => "register-after-init",
            Bug::ConfigNoDirSync => "config-no-dir-sync",
            Bug::AcceptNoParentSync => "accept-no-parent-sync",
            Bug::RegistrationNotSynced => "registration-not-synced",
            Bug::WalUnlinkNoDirSync => "wal-unlink-no-dir-sync",
            Bug::SegmentIndexUnchecked => "segment-index-unchecked",
            Bug::IndexesMissingTrusted => "indexes-missing-trusted",
            Bug::SnapshotOverWrittenLog => "snapshot-over-written-log",
            Bug::StaleTailResurrected => "stale-tail-resurrected",
            Bug::SegmentZeroHeaderFatal => "segment-zero-header-fatal",
            Bug::SnapshotBeforeWritten => "snapshot-before-written",
            Bug::WalZeroChecksumUnchecked => "wal-zero-checksum-unchecked",
            Bug::InstallBeforeLiveWritten => "install-before-live-written",
            Bug::SegmentReusedAfterFailedSync => "segment-reused-after-failed-sync",
            Bug::WrittenBeyondLog => "written-beyond-log",
            Bug::WalGarbageTailFatal => "wal-garbage-tail-fatal",
            Bug::WalRecoveryTrustsPageCache => "wal-recovery-trusts-page-cache",
            Bug::MissingIndexExit => "missing-index-exit",
            Bug::WritersUnpersistedAtHandover => "writers-unpersisted-at-handover",
            Bug::NextIndexPastLog => "next-index-past-log",
            Bug::UnvalidatedReplyUnwritten => "unvalidated-reply-unwritten",
            Bug::StaleEmptyAppendTruncates => "stale-empty-append-truncates",
            Bug::BackoffStatusKept => "backoff-status-kept",
            Bug::UnfinishedSnapshotTrusted => "unfinished-snapshot-trusted",
            Bug::SegmentEmptyRecordTrusted => "segment-empty-record-trusted",
            Bug::WaitingLeaderTakesTerm => "waiting-leader-takes-term",
            Bug::ReceiveCutLosesWritten => "receive-cut-loses-written",
            Bug::InstallWithoutLiveEntries => "install-without-live-entries",
            Bug::RemovedMemberDisrupts => "removed-member-disrupts",
            Bug::RemovedCandidateCountsItself => "removed-candidate-counts-itself",
            Bug::LeaderNoopDropped => "leader-noop-dropped",
            Bug::ConfigKeptAfterTruncation => "config-kept-after-truncation",
            Bug::WalRestartFlushesOverwritten => "wal-restart-flushes-overwritten",
            Bug::WalGapRequestIgnored => "wal-gap-request-ignored",
            Bug::WalRestartKeepsOutOfSeq => "wal-restart-keeps-out-of-seq",
            Bug::SparseReadCrcUnchecked => "sparse-read-crc-unchecked",
        }
    }

    /// Parses a CLI name.
    pub fn from_name(name: &str) -> Option<Bug> {
        Bug::ALL.into_iter().find(|b| b.name() == name)
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The set of switched-on bugs of one node (empty: Ra with every fix).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bugs(BTreeSet<Bug>);

impl Bugs {
    /// No bug switched on.
    pub fn none() -> Bugs {
        Bugs(BTreeSet::new())
    }

    /// The given switches.
    pub fn of(bugs: &[Bug]) -> Bugs {
        Bugs(bugs.iter().copied().collect())
    }

    /// Whether `bug` is switched on.
    pub fn has(&self, bug: Bug) -> bool {
        self.0.contains(&bug)
    }

    /// The switched-on bugs, in order.
    pub fn iter(&self) -> impl Iterator<Item = Bug> + '_ {
        self.0.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for bug in Bug::ALL {
            assert_eq!(Bug::from_name(bug.name()), Some(bug));
        }
        assert_eq!(Bug::from_name("nope"), None);
        assert!(Bugs::of(&[Bug::WalRecoveryRescan]).has(Bug::WalRecoveryRescan));
        assert!(!Bugs::none().has(Bug::WalRecoveryRescan));
    }
}
