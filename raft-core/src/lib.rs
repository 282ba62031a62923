//! Ra-style Raft (consensus core and storage actors over `vfs::FileSystem`); not built yet — see issues 3–5.
