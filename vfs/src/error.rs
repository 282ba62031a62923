//! Typed filesystem errors. Every operating condition a caller can meet is an [`ErrorKind`] that maps to a
//! POSIX errno; broken invariants inside the model are `assert!`s instead, never errors.

use crate::OpKind;
use serde::{Deserialize, Serialize};

/// The error kinds of the model, each mapping to the errno Linux returns for the same condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// `ENOENT`: a component of the path does not exist (also the empty path).
    NotFound,
    /// `EEXIST`.
    AlreadyExists,
    /// `ENOTDIR`: a non-final component, or a name with a trailing `/`, is not a directory.
    NotADirectory,
    /// `EISDIR`.
    IsADirectory,
    /// `ENOTEMPTY`.
    DirectoryNotEmpty,
    /// `EBADF`: unknown or closed handle, or the handle lacks the access the call needs.
    BadDescriptor,
    /// `EINVAL`: invalid flag combination, zero-length fallocate, rename of a directory into itself, a
    /// path that names `.`/`..` where an entry name is required, a NUL byte in a path.
    InvalidInput,
    /// `ENAMETOOLONG`: a component longer than 255 bytes.
    NameTooLong,
    /// `ENOSPC` (capacity exhausted or injected).
    NoSpace,
    /// `EIO` (injected, a failed fsync, or a latent sector error on read).
    Io,
    /// `EFBIG`: offset beyond the maximum file size.
    FileTooLarge,
    /// `EBUSY`: the call names the root directory as an entry to create, remove or rename.
    Busy,
    /// `..` would climb above the filesystem's root. Not a kernel condition (the kernel's root is the
    /// real `/`); the model refuses it rather than touch anything outside its tree. Reported as `EACCES`.
    EscapesRoot,
    /// `EACCES` from the host (`RealFs` only).
    PermissionDenied,
    /// `EROFS`: a call that would write, made through a read-only look (`SimFs::peek`).
    ReadOnly,
    /// Any other errno the host returned (`RealFs` only).
    Other(i32),
    /// The node lost power (a power cut fired at a crash point): nothing more happens until it is powered
    /// on again. Reported as `EIO`, as a dying disk would.
    PoweredOff,
}

impl ErrorKind {
    /// The Linux errno for this kind.
    pub fn errno(self) -> i32 {
        match self {
            ErrorKind::NotFound => 2,
            ErrorKind::Io | ErrorKind::PoweredOff => 5,
            ErrorKind::BadDescriptor => 9,
            ErrorKind::EscapesRoot | ErrorKind::PermissionDenied => 13,
            ErrorKind::Other(errno) => errno,
            ErrorKind::Busy => 16,
            ErrorKind::AlreadyExists => 17,
            ErrorKind::NotADirectory => 20,
            ErrorKind::IsADirectory => 21,
            ErrorKind::InvalidInput => 22,
            ErrorKind::FileTooLarge => 27,
            ErrorKind::NoSpace => 28,
            ErrorKind::ReadOnly => 30,
            ErrorKind::NameTooLong => 36,
            ErrorKind::DirectoryNotEmpty => 39,
        }
    }

    /// The errno's symbolic name (`"ENOENT"`, …).
    pub fn errno_name(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "ENOENT",
            ErrorKind::Io | ErrorKind::PoweredOff => "EIO",
            ErrorKind::BadDescriptor => "EBADF",
            ErrorKind::EscapesRoot | ErrorKind::PermissionDenied => "EACCES",
            ErrorKind::Other(_) => "E?",
            ErrorKind::Busy => "EBUSY",
            ErrorKind::AlreadyExists => "EEXIST",
            ErrorKind::NotADirectory => "ENOTDIR",
            ErrorKind::IsADirectory => "EISDIR",
            ErrorKind::InvalidInput => "EINVAL",
            ErrorKind::FileTooLarge => "EFBIG",
            ErrorKind::NoSpace => "ENOSPC",
            ErrorKind::NameTooLong => "ENAMETOOLONG",
            ErrorKind::DirectoryNotEmpty => "ENOTEMPTY",
            ErrorKind::ReadOnly => "EROFS",
        }
    }

    /// The kind for a Linux errno, if the model knows it.
    pub fn from_errno(errno: i32) -> Option<ErrorKind> {
        Some(match errno {
            2 => ErrorKind::NotFound,
            5 => ErrorKind::Io,
            9 => ErrorKind::BadDescriptor,
            13 => ErrorKind::PermissionDenied,
            16 => ErrorKind::Busy,
            17 => ErrorKind::AlreadyExists,
            20 => ErrorKind::NotADirectory,
            21 => ErrorKind::IsADirectory,
            22 => ErrorKind::InvalidInput,
            27 => ErrorKind::FileTooLarge,
            28 => ErrorKind::NoSpace,
            30 => ErrorKind::ReadOnly,
            36 => ErrorKind::NameTooLong,
            39 => ErrorKind::DirectoryNotEmpty,
            _ => return None,
        })
    }
}

/// A failed filesystem call: what went wrong, in which call, on which path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsError {
    /// The condition.
    pub kind: ErrorKind,
    /// The call that failed.
    pub op: OpKind,
    /// The path the call named (for handle calls: the path the handle was opened with).
    pub path: String,
}

impl FsError {
    /// A new error.
    pub fn new(kind: ErrorKind, op: OpKind, path: &str) -> FsError {
        FsError { kind, op, path: path.to_string() }
    }
}

impl std::fmt::Display for FsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {} ({:?})", self.op, self.path, self.kind.errno_name(), self.kind)
    }
}

impl std::error::Error for FsError {}

/// The result of a filesystem call.
pub type Result<T> = std::result::Result<T, FsError>;
