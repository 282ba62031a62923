//! Mem tables (Ra's `ra_mt` over `ra_log_ets`): per-server chains of tables holding recently appended
//! entries until the segment writer has copied them into segments.
//!
//! Key invariant: a [`MemTable`] handle's `indexes` describe what its owner *inserted*; the shared
//! [`MemTables`] store holds what is *there now*. The two diverge while a delete is in progress, and a
//! delete is not atomic: [`DeleteJob`] removes a few keys per step, and a range delete visits keys in ETS
//! hash order (not index order), exactly the window PR 589 fix 2 closed. Whoever re-derives a handle
//! from the store ([`MemTables::mem_table_please`]) sees the half-deleted table.

use std::collections::{BTreeMap, VecDeque};

use crate::seq::Seq;
use crate::types::{LogIndex, Payload, TableId, Term, Uid};

/// Ra's `MAX_MEMTBL_ENTRIES`: a table holding more entries refuses inserts (`limit_reached`), and the
/// owner opens a successor.
pub const MAX_TABLE_ENTRIES: u64 = 1_000_000;

#[derive(Debug, Clone)]
struct Table {
    uid: Uid,
    entries: BTreeMap<u64, (Term, Payload)>,
}

/// What a lookup in the shared store found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The entry is present.
    Found(Term, Payload),
    /// The table exists but holds no such index.
    Missing,
    /// The table was deleted (Ra: `badarg` from ETS).
    TableGone,
}

/// The node-wide store of every server's mem tables (Ra's `ra_log_ets` with its `open_mem_tbls` bag).
#[derive(Debug, Clone)]
pub struct MemTables {
    tables: BTreeMap<TableId, Table>,
    /// Per server, its open tables in creation order (oldest first), as the `open_mem_tbls` bag returns them.
    open: BTreeMap<Uid, Vec<TableId>>,
    next_tid: u64,
}

impl Default for MemTables {
    fn default() -> MemTables {
        MemTables::new()
    }
}

impl MemTables {
    /// No tables.
    pub fn new() -> MemTables {
        MemTables { tables: BTreeMap::new(), open: BTreeMap::new(), next_tid: 1 }
    }

    /// Whether no server has an open table (Ra's test for `initial` versus `post_boot` WAL recovery).
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    fn create(&mut self, uid: &Uid) -> TableId {
        let tid = TableId(self.next_tid);
        self.next_tid += 1;
        self.tables.insert(tid, Table { uid: uid.clone(), entries: BTreeMap::new() });
        self.open.entry(uid.clone()).or_default().push(tid);
        tid
    }

    fn scan(&self, tid: TableId) -> Seq {
        match self.tables.get(&tid) {
            Some(t) => Seq::from_indexes(t.entries.keys().map(|&i| LogIndex(i))),
            None => Seq::new(),
        }
    }

    /// Ra's `mem_table_please`: the server's existing chain, newest first, each table's index sequence
    /// **re-derived by scanning what is in the table now**; or a new empty table.
    pub fn mem_table_please(&mut self, uid: &Uid) -> MemTable {
        let tids = match self.open.get(uid) {
            Some(tids) if !tids.is_empty() => tids.clone(),
            _ => vec![self.create(uid)],
        };
        let mut chain: Option<MemTable> = None;
        for tid in tids {
            let indexes = self.scan(tid);
            chain = Some(MemTable { tid, indexes, prev: chain.map(Box::new) });
        }
        chain.expect("at least one table")
    }

    /// Ra's `new_mem_table_please`: a new empty table succeeding `prev`.
    pub fn new_mem_table_please(&mut self, uid: &Uid, prev: MemTable) -> MemTable {
        let tid = self.create(uid);
        MemTable { tid, indexes: Seq::new(), prev: Some(Box::new(prev)) }
    }

    /// Ra's `delete_mem_tables`: drops every table of `uid` at once.
    pub fn delete_mem_tables(&mut self, uid: &Uid) {
        if let Some(tids) = self.open.remove(uid) {
            for tid in tids {
                self.tables.remove(&tid);
            }
        }
    }

    /// Drops one table.
    pub fn delete_table(&mut self, tid: TableId) {
        if let Some(t) = self.tables.remove(&tid)
            && let Some(tids) = self.open.get_mut(&t.uid)
        {
            tids.retain(|&x| x != tid);
            if tids.is_empty() {
                self.open.remove(&t.uid);
            }
        }
    }

    /// Looks `index` up in table `tid`.
    pub fn lookup(&self, tid: TableId, index: LogIndex) -> Lookup {
        match self.tables.get(&tid) {
            None => Lookup::TableGone,
            Some(t) => match t.entries.get(&index.0) {
                Some((term, payload)) => Lookup::Found(*term, payload.clone()),
                None => Lookup::Missing,
            },
        }
    }

    /// The term at `index` in `tid`, if present.
    pub fn term_at(&self, tid: TableId, index: LogIndex) -> Option<Term> {
        self.tables.get(&tid)?.entries.get(&index.0).map(|(t, _)| *t)
    }

    /// Number of entries in `tid` (0 if it is gone).
    pub fn table_len(&self, tid: TableId) -> u64 {
        self.tables.get(&tid).map_or(0, |t| t.entries.len() as u64)
    }

    /// Whether `tid` exists.
    pub fn table_exists(&self, tid: TableId) -> bool {
        self.tables.contains_key(&tid)
    }

    /// `uid`'s open tables, oldest first.
    pub fn tables_of(&self, uid: &Uid) -> Vec<TableId> {
        self.open.get(uid).cloned().unwrap_or_default()
    }

    /// Every index present in `tid` now, ascending.
    pub fn indexes_in(&self, tid: TableId) -> Seq {
        self.scan(tid)
    }

    /// Total entries over all tables (for tests and the bench).
    pub fn total_entries(&self) -> u64 {
        self.tables.values().map(|t| t.entries.len() as u64).sum()
    }

    fn put(&mut self, tid: TableId, index: LogIndex, term: Term, payload: Payload) -> Result<(), TableGone> {
        let t = self.tables.get_mut(&tid).ok_or(TableGone(tid))?;
        t.entries.insert(index.0, (term, payload));
        Ok(())
    }

    fn remove_key(&mut self, tid: TableId, index: u64) {
        if let Some(t) = self.tables.get_mut(&tid) {
            t.entries.remove(&index);
        }
    }
}

/// An operation on a table that no longer exists (Ra: `badarg`; the owner crashes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableGone(pub TableId);

impl std::fmt::Display for TableGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mem table {} no longer exists", self.0)
    }
}

/// Why [`MemTable::insert`] refused an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertError {
    /// `index <= last`: the owner must open a successor table.
    Overwriting,
    /// The table is full: the owner must open a successor table.
    LimitReached,
    /// The index skips ahead of `last + 1` (Ra exits with `unexpected_sparse_insert`).
    UnexpectedSparse,
    /// The table was deleted under its owner.
    TableGone(TableId),
}

/// Why [`MemTable::insert_sparse`] refused an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SparseInsertError {
    /// `index <= last`: the owner must open a successor table.
    Overwriting,
    /// The table's last index is not the writer's `prev_index`: entries are missing in between.
    GapDetected,
    /// The table is full.
    LimitReached,
    /// The table was deleted under its owner.
    TableGone(TableId),
}

/// A delete to execute against the shared store (Ra's `ra_mt:delete_spec()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteSpec {
    /// Delete these indexes of `tid` (per key, or as a range delete when that is cheaper; see
    /// [`DeleteJob::plan`]).
    Indexes(TableId, Seq),
    /// Delete every key of `tid` strictly below the index.
    Below(TableId, LogIndex),
    /// Drop the whole table.
    Table(TableId),
    /// Several deletes.
    Multi(Vec<DeleteSpec>),
}

/// One owner's view of its table chain (Ra's `ra_mt` state), newest table first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemTable {
    tid: TableId,
    indexes: Seq,
    prev: Option<Box<MemTable>>,
}

impl MemTable {
    /// The newest table's id.
    pub fn tid(&self) -> TableId {
        self.tid
    }

    /// The indexes this handle believes its newest table holds.
    pub fn indexes(&self) -> &Seq {
        &self.indexes
    }

    /// The older table in the chain.
    pub fn prev(&self) -> Option<&MemTable> {
        self.prev.as_deref()
    }

    /// Ra's `insert`: requires `index == last + 1` (or an empty table).
    pub fn insert(
        &mut self,
        store: &mut MemTables,
        index: LogIndex,
        term: Term,
        payload: Payload,
    ) -> Result<(), InsertError> {
        match self.indexes.last() {
            Some(last) if last.0.checked_add(1) == Some(index.0) => {}
            None => {}
            Some(last) if index <= last => return Err(InsertError::Overwriting),
            Some(_) => return Err(InsertError::UnexpectedSparse),
        }
        if self.indexes.len() > MAX_TABLE_ENTRIES {
            return Err(InsertError::LimitReached);
        }
        store.put(self.tid, index, term, payload).map_err(|e| InsertError::TableGone(e.0))?;
        self.indexes.append(index);
        Ok(())
    }

    /// Ra's `insert_sparse`: an empty table accepts anything; otherwise the table's last index must be
    /// `prev_index` and `index` must lie above it.
    pub fn insert_sparse(
        &mut self,
        store: &mut MemTables,
        index: LogIndex,
        term: Term,
        payload: Payload,
        prev_index: Option<LogIndex>,
    ) -> Result<(), SparseInsertError> {
        if let Some(last) = self.indexes.last() {
            let overwriting = index <= last;
            if Some(last) != prev_index || overwriting {
                return Err(if overwriting { SparseInsertError::Overwriting } else { SparseInsertError::GapDetected });
            }
            if self.indexes.len() > MAX_TABLE_ENTRIES {
                return Err(SparseInsertError::LimitReached);
            }
        }
        store.put(self.tid, index, term, payload).map_err(|e| SparseInsertError::TableGone(e.0))?;
        self.indexes.append(index);
        Ok(())
    }

    /// Ra's `lookup`: the entry at `index`, searching the chain; `Err` when a table the handle relies on
    /// was deleted.
    pub fn lookup(&self, store: &MemTables, index: LogIndex) -> Result<Option<(Term, Payload)>, TableGone> {
        if self.indexes.contains(index) {
            return match store.lookup(self.tid, index) {
                Lookup::Found(term, payload) => Ok(Some((term, payload))),
                Lookup::Missing => Ok(None),
                Lookup::TableGone => Err(TableGone(self.tid)),
            };
        }
        match &self.prev {
            Some(prev) => prev.lookup(store, index),
            None => Ok(None),
        }
    }

    /// The term the chain holds at `index`: the newest table holding it decides, as in `lookup`.
    pub fn term_at(&self, store: &MemTables, index: LogIndex) -> Option<Term> {
        if self.indexes.contains(index) {
            return store.term_at(self.tid, index);
        }
        self.prev.as_ref()?.term_at(store, index)
    }

    /// Ra's `tid_for`: the table of the chain holding `index` at `term`.
    pub fn tid_for(&self, store: &MemTables, index: LogIndex, term: Term) -> Option<TableId> {
        if store.term_at(self.tid, index) == Some(term) {
            return Some(self.tid);
        }
        self.prev.as_ref()?.tid_for(store, index, term)
    }

    /// Ra's `range`: the span covered by the chain, newer tables shadowing older ones.
    pub fn range(&self) -> Option<(LogIndex, LogIndex)> {
        let Some(prev) = &self.prev else { return self.indexes.range() };
        let Some((start, end)) = self.indexes.range() else { return prev.range() };
        match prev.range() {
            // Ra's ra_range:limit(End, R): the part of R strictly below End.
            Some((ps, _)) if ps < end => Some((start.min(ps), end)),
            _ => Some((start, end)),
        }
    }

    /// Ra's `set_first`: forget every index below `index`; returns the deletes to execute.
    pub fn set_first(&mut self, index: LogIndex) -> Vec<DeleteSpec> {
        let force = self.indexes.first().is_some_and(|f| index >= f);
        let mut specs = Vec::new();
        if !self.indexes.is_empty() {
            specs.push(DeleteSpec::Indexes(self.tid, self.indexes.below(index)));
        }
        specs.extend(self.prev_set_first(index, force));
        self.indexes = self.indexes.floor(index);
        specs
    }

    fn prev_set_first(&mut self, index: LogIndex, force: bool) -> Vec<DeleteSpec> {
        let Some(prev) = self.prev.as_mut() else { return Vec::new() };
        let mut specs = prev.set_first(index);
        let upgrade = matches!(specs.first(), Some(DeleteSpec::Indexes(t, _)) if *t == prev.tid)
            && (prev.indexes.is_empty() || force);
        if upgrade {
            specs[0] = DeleteSpec::Table(prev.tid);
            let older = prev.prev.take();
            self.prev = older;
        }
        specs
    }

    /// Ra's `record_flushed`: the segment writer has flushed `flushed` of table `tid`; forget it (and,
    /// because indexes are written in order, everything of that table below it) and return the delete.
    pub fn record_flushed(&mut self, tid: TableId, flushed: &Seq) -> Option<DeleteSpec> {
        if tid == self.tid {
            let end = flushed.last()?;
            if !self.indexes.contains(end) {
                return None;
            }
            let spec0 = DeleteSpec::Indexes(tid, self.indexes.limit(end));
            let next = LogIndex(end.0.saturating_add(1));
            let prev_specs = self.prev_set_first(next, true);
            self.indexes = self.indexes.floor(next);
            return Some(if prev_specs.is_empty() {
                spec0
            } else {
                DeleteSpec::Multi(std::iter::once(spec0).chain(prev_specs).collect())
            });
        }
        let prev = self.prev.as_mut()?;
        let spec = prev.record_flushed(tid, flushed);
        if prev.range().is_none() {
            self.prev = None;
            return match spec {
                Some(DeleteSpec::Multi(specs)) => Some(DeleteSpec::Multi(
                    std::iter::once(DeleteSpec::Table(tid))
                        .chain(specs.into_iter().filter(|s| matches!(s, DeleteSpec::Table(_))))
                        .collect(),
                )),
                Some(DeleteSpec::Indexes(t, _) | DeleteSpec::Below(t, _)) if t == tid => Some(DeleteSpec::Table(tid)),
                other => other,
            };
        }
        spec
    }
}

/// The order in which an ETS `set` table visits integer keys during `select_delete`: its hash-slot
/// order, which is not index order. Modelled by a fixed bit mixer (SplitMix64 finaliser) so the order is
/// deterministic yet unrelated to the index sequence.
fn ets_slot_order(index: u64) -> u64 {
    let mut z = index.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DeleteUnit {
    Key(TableId, u64),
    Table(TableId),
}

/// A delete in progress, executed a few keys per step ([`DeleteJob::step`]) so that other actors can
/// observe the half-deleted table, as concurrent ETS readers can in Ra.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteJob {
    units: VecDeque<DeleteUnit>,
}

impl DeleteJob {
    /// Plans `spec` against the store as it is now, choosing per-key or range deletion the way Ra's
    /// `ra_mt:delete` does: a range delete (in hash order) when more than half the table goes, or when an
    /// entry below the range survives from a missed flush event (the mop-up case).
    pub fn plan(store: &MemTables, spec: &DeleteSpec) -> DeleteJob {
        let mut job = DeleteJob { units: VecDeque::new() };
        job.add(store, spec);
        job
    }

    fn add(&mut self, store: &MemTables, spec: &DeleteSpec) {
        match spec {
            DeleteSpec::Indexes(tid, seq) => {
                let Some((start, end)) = seq.range() else { return };
                let half = store.table_len(*tid) / 2;
                let lower_exists =
                    start.0 > 0 && matches!(store.lookup(*tid, LogIndex(start.0 - 1)), Lookup::Found(..));
                if seq.len() > half || lower_exists {
                    self.add(store, &DeleteSpec::Below(*tid, LogIndex(end.0.saturating_add(1))));
                } else {
                    self.units.extend(seq.iter().map(|i| DeleteUnit::Key(*tid, i.0)));
                }
            }
            DeleteSpec::Below(tid, bound) => {
                let Some(t) = store.tables.get(tid) else { return };
                let mut keys: Vec<u64> = t.entries.range(..bound.0).map(|(&k, _)| k).collect();
                keys.sort_by_key(|&k| (ets_slot_order(k), k));
                self.units.extend(keys.into_iter().map(|k| DeleteUnit::Key(*tid, k)));
            }
            DeleteSpec::Table(tid) => self.units.push_back(DeleteUnit::Table(*tid)),
            DeleteSpec::Multi(specs) => {
                for s in specs {
                    self.add(store, s);
                }
            }
        }
    }

    /// Whether nothing is left to delete.
    pub fn is_done(&self) -> bool {
        self.units.is_empty()
    }

    /// Keys (or whole tables) still to delete.
    pub fn remaining(&self) -> usize {
        self.units.len()
    }

    /// Deletes up to `budget` keys (a whole table counts as one); returns whether the job is done.
    pub fn step(&mut self, store: &mut MemTables, budget: usize) -> bool {
        for _ in 0..budget.max(1) {
            match self.units.pop_front() {
                Some(DeleteUnit::Key(tid, k)) => store.remove_key(tid, k),
                Some(DeleteUnit::Table(tid)) => store.delete_table(tid),
                None => break,
            }
        }
        self.units.is_empty()
    }

    /// Runs the whole job at once (for owners whose deletes Ra executes without interleaving concern).
    pub fn run(mut self, store: &mut MemTables) {
        while !self.step(store, usize::MAX) {}
    }
}
