//! `SimFs::check_invariants`: the model's structural invariants, checked by the tests after every step —
//! cached views against durable images and pending operations, directory entries against entry
//! operations, inode reference counts, capacity accounting. It reads the model and changes nothing.

use super::*;

impl SimFs {
    /// Checks every structural invariant of the model; `Err` names the first one broken.
    pub fn check_invariants(&self) -> std::result::Result<(), String> {
        let live = |ino: Ino| (ino as usize) < self.inodes.len() && self.inodes[ino as usize].is_some();
        let mut cached_parents: BTreeMap<Ino, u32> = BTreeMap::new();
        let mut used = 0;
        for (ino, inode) in self.live_inodes() {
            match &inode.node {
                Node::Dir(d) => {
                    for (name, child) in d.cached.iter().chain(d.durable.iter()) {
                        if !live(*child) {
                            return Err(format!("dir {ino} entry {name} points to dead inode {child}"));
                        }
                    }
                    for child in d.cached.values() {
                        *cached_parents.entry(*child).or_default() += 1;
                    }
                }
                Node::File(f) => {
                    used += f.usage_pages();
                    let mut recount = f.clone();
                    recount.recount_reserved();
                    if recount.reserved_unbacked != f.reserved_unbacked {
                        return Err(format!("file {ino}: {} reserved pages without data counted", f.reserved_unbacked));
                    }
                    if !f.cached.invariant_holds() || !f.durable.invariant_holds() {
                        return Err(format!("file {ino}: bytes past the length are not zero"));
                    }
                    if f.pending.windows(2).any(|w| w[0].seq >= w[1].seq) {
                        return Err(format!("file {ino}: pending ops out of order"));
                    }
                    if !f.stale_cache {
                        let replay = f.replay();
                        if !replay.same_bytes(&f.cached) {
                            return Err(format!("file {ino}: cached view != durable + pending"));
                        }
                    }
                }
            }
        }
        if used != self.used_pages {
            return Err(format!("used pages {} but files hold {used}", self.used_pages));
        }
        for (ino, count) in &cached_parents {
            if *count > 1 {
                return Err(format!("inode {ino} has {count} cached names"));
            }
        }
        let mut open: BTreeMap<Ino, u32> = BTreeMap::new();
        for f in self.fds.values() {
            if !live(f.ino) {
                return Err(format!("handle on dead inode {}", f.ino));
            }
            *open.entry(f.ino).or_default() += 1;
        }
        for (ino, inode) in self.live_inodes() {
            if inode.open_fds != open.get(&ino).copied().unwrap_or(0) {
                return Err(format!("inode {ino} open count {} is wrong", inode.open_fds));
            }
        }
        if self.entry_ops.windows(2).any(|w| w[0].seq >= w[1].seq) {
            return Err("entry ops out of order".to_string());
        }
        // Directories: cached entries = durable entries + pending entry operations, in order.
        let mut maps: BTreeMap<Ino, BTreeMap<String, Ino>> = BTreeMap::new();
        for op in &self.entry_ops {
            for dir in op.dirs().into_iter().flatten() {
                if live(dir) {
                    maps.entry(dir).or_insert_with(|| self.dir(dir).durable.clone());
                }
            }
            op.apply_to(&mut maps);
        }
        for (ino, inode) in self.live_inodes() {
            if let Node::Dir(d) = &inode.node
                && !d.stale_entries
                && maps.get(&ino).unwrap_or(&d.durable) != &d.cached
            {
                return Err(format!("dir {ino}: cached entries != durable + pending"));
            }
        }
        for op in &self.entry_ops {
            if op.inodes().iter().chain(op.dirs().iter()).flatten().any(|i| !live(*i)) {
                return Err(format!("entry op {} refers to a dead inode", op.seq));
            }
        }
        Ok(())
    }
}
