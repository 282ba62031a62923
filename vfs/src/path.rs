//! Path parsing shared by both backends, and the glob used by crash points and error rules.
//!
//! Both backends validate a path with the same lexical rules *before* touching anything (empty path, NUL
//! bytes, over-long names, `..` above the root), so that they fail identically; the walk itself (`.`,
//! `..`, missing and non-directory components) is done by the kernel for `RealFs` and by an equivalent
//! inode walk for `SimFs`.

use crate::ErrorKind;

/// Longest file name Linux accepts (`NAME_MAX`).
pub(crate) const NAME_MAX: usize = 255;

/// Linux's `PATH_MAX`, terminating NUL included: a path of this many bytes or more is `ENAMETOOLONG`.
pub(crate) const PATH_MAX: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Component<'a> {
    Cur,
    Parent,
    Name(&'a str),
}

#[derive(Debug, Clone)]
pub(crate) struct ParsedPath<'a> {
    pub(crate) components: Vec<Component<'a>>,
    /// The path ended in `/` (it must then name a directory).
    pub(crate) trailing_slash: bool,
}

/// The final component of a path that names a directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Last<'a> {
    /// A plain name: the entry to create, remove or rename.
    Name(&'a str),
    /// The path is the root itself (`/`, `.`): Linux's `LAST_ROOT`.
    Root,
    /// The path ends in `.` (`LAST_DOT`).
    Dot,
    /// The path ends in `..` (`LAST_DOTDOT`).
    DotDot,
}

impl<'a> ParsedPath<'a> {
    /// Splits off the final component for calls that create, remove or rename an entry. Linux walks the
    /// parent first and only then refuses a final `.`, `..` or the root, with an error per call.
    pub(crate) fn split_entry(&self) -> (&[Component<'a>], Last<'a>) {
        match self.components.split_last() {
            None => (&[], Last::Root),
            Some((Component::Name(name), parent)) => (parent, Last::Name(name)),
            Some((Component::Cur, parent)) => (parent, Last::Dot),
            Some((Component::Parent, parent)) => (parent, Last::DotDot),
        }
    }

    /// True if the path names the root with no components at all (`/`): host calls must never remove
    /// or rename the root directory of a `RealFs`.
    pub(crate) fn is_bare_root(&self) -> bool {
        self.components.is_empty()
    }
}

/// Parses and lexically validates a path.
pub(crate) fn parse(path: &str) -> Result<ParsedPath<'_>, ErrorKind> {
    if path.is_empty() {
        return Err(ErrorKind::NotFound);
    }
    if path.contains('\0') {
        return Err(ErrorKind::InvalidInput);
    }
    if path.len() >= PATH_MAX {
        return Err(ErrorKind::NameTooLong);
    }
    let mut components = Vec::new();
    let mut depth: usize = 0;
    for part in path.split('/') {
        match part {
            "" => {}
            "." => components.push(Component::Cur),
            ".." => {
                if depth == 0 {
                    return Err(ErrorKind::EscapesRoot);
                }
                depth -= 1;
                components.push(Component::Parent);
            }
            name => {
                if name.len() > NAME_MAX {
                    return Err(ErrorKind::NameTooLong);
                }
                depth += 1;
                components.push(Component::Name(name));
            }
        }
    }
    let trailing_slash = path.ends_with('/') && !components.is_empty();
    Ok(ParsedPath { components, trailing_slash })
}

/// The lexically normalised form of a valid path: no leading `/`, `.` and `..` resolved, `""` for the
/// root. Used to name paths in op logs and to match globs.
pub(crate) fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    parts.join("/")
}

/// Matches a normalised path (no leading `/`) against a glob.
///
/// `*` matches any run of characters except `/`, `?` one character except `/`, `**` any run including
/// `/`. A pattern without `/` is matched against the last path component only, so `*.wal` matches
/// `wal/0000000000000001.wal`; a pattern with `/` must match the whole path.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let path = path.trim_start_matches('/');
    let pattern = pattern.trim_start_matches('/');
    if pattern.contains('/') {
        glob(pattern.as_bytes(), path.as_bytes())
    } else {
        let name = path.rsplit('/').next().unwrap_or("");
        glob(pattern.as_bytes(), name.as_bytes())
    }
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => {
            if let Some(rest) = rest.strip_prefix(b"*") {
                // `**` (and `**/`, which may also match nothing).
                if let Some(after_slash) = rest.strip_prefix(b"/")
                    && glob(after_slash, text)
                {
                    return true;
                }
                (0..=text.len()).any(|i| glob(rest, &text[i..]))
            } else {
                for i in 0..=text.len() {
                    if glob(rest, &text[i..]) {
                        return true;
                    }
                    if i < text.len() && text[i] == b'/' {
                        break;
                    }
                }
                false
            }
        }
        Some((b'?', rest)) => match text.split_first() {
            Some((c, text_rest)) if *c != b'/' => glob(rest, text_rest),
            _ => false,
        },
        Some((c, rest)) => match text.split_first() {
            Some((t, text_rest)) if t == c => glob(rest, text_rest),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_bad_paths_with_typed_errors() {
        assert_eq!(parse("").unwrap_err(), ErrorKind::NotFound);
        assert_eq!(parse("a\0b").unwrap_err(), ErrorKind::InvalidInput);
        assert_eq!(parse("..").unwrap_err(), ErrorKind::EscapesRoot);
        assert_eq!(parse("a/../..").unwrap_err(), ErrorKind::EscapesRoot);
        assert_eq!(parse("/../x").unwrap_err(), ErrorKind::EscapesRoot);
        assert_eq!(parse(&"n".repeat(256)).unwrap_err(), ErrorKind::NameTooLong);
        assert!(parse(&"n".repeat(255)).is_ok());
        assert_eq!(parse(&"a/".repeat(2048)).unwrap_err(), ErrorKind::NameTooLong);
        assert!(parse(&"a/".repeat(2047)).is_ok());
        let p = parse("a/./b/../c/").unwrap();
        assert!(p.trailing_slash);
        assert_eq!(p.components.len(), 5);
        assert_eq!(parse("/").unwrap().split_entry().1, Last::Root);
        assert_eq!(parse("a/..").unwrap().split_entry().1, Last::DotDot);
        assert_eq!(parse("a/.").unwrap().split_entry().1, Last::Dot);
        assert_eq!(parse("a//b").unwrap().split_entry().1, Last::Name("b"));
    }

    #[test]
    fn normalize_resolves_dots_lexically() {
        assert_eq!(normalize("/a/./b/../c/"), "a/c");
        assert_eq!(normalize("/"), "");
        assert_eq!(normalize("x"), "x");
    }

    #[test]
    fn glob_semantics() {
        assert!(glob_match("*.wal", "wal/0000000000000001.wal"));
        assert!(!glob_match("*.wal", "wal/writers.snapshot"));
        assert!(glob_match("wal/*.wal", "wal/1.wal"));
        assert!(!glob_match("*/*.wal", "a/wal/1.wal"));
        assert!(glob_match("**/*.segment", "uid1/0001.segment"));
        assert!(glob_match("**/*.segment", "0001.segment"));
        assert!(glob_match("**", "a/b/c"));
        assert!(glob_match("uid?/config", "uid1/config"));
        assert!(!glob_match("uid?/config", "uid12/config"));
        assert!(glob_match("*", "anything/at/all"));
        assert!(!glob_match("a/*", "a/b/c"));
    }
}
