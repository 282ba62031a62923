//! The part of EDN that histories use: maps, vectors and lists, keywords, strings, integers, `nil`,
//! booleans and symbols (a float or anything else is kept as its text). Commas are whitespace; `;`
//! starts a comment. Enough for Knossos's and Jepsen's `history.edn`, one map per line.

/// An EDN value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    Str(String),
    Keyword(String),
    /// A symbol, a float, a tagged value: its text.
    Other(String),
    Vector(Vec<Edn>),
    Map(Vec<(Edn, Edn)>),
}

impl Edn {
    /// The value of `:name` in a map.
    pub(super) fn get(&self, name: &str) -> Option<&Edn> {
        match self {
            Edn::Map(entries) => {
                entries.iter().find(|(k, _)| matches!(k, Edn::Keyword(kw) if kw == name)).map(|(_, v)| v)
            }
            _ => None,
        }
    }
}

/// Parses one EDN value that is all of `text`.
pub(super) fn parse(text: &str) -> Result<Edn, String> {
    let mut p = Parser { bytes: text.as_bytes(), at: 0, depth: 0 };
    let value = p.value()?;
    p.skip_space();
    if p.at < p.bytes.len() {
        return Err(format!("unexpected {:?} after the value at column {}", p.bytes[p.at] as char, p.at + 1));
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
    depth: usize,
}

/// Nesting beyond this is refused rather than followed (a hostile file must not exhaust the stack).
const MAX_DEPTH: usize = 64;

impl Parser<'_> {
    fn skip_space(&mut self) {
        while let Some(&b) = self.bytes.get(self.at) {
            if b == b';' {
                while self.bytes.get(self.at).is_some_and(|&b| b != b'\n') {
                    self.at += 1;
                }
            } else if b.is_ascii_whitespace() || b == b',' {
                self.at += 1;
            } else {
                break;
            }
        }
    }

    fn value(&mut self) -> Result<Edn, String> {
        self.skip_space();
        let Some(&b) = self.bytes.get(self.at) else { return Err("unexpected end of line".into()) };
        match b {
            b'{' | b'[' | b'(' => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(format!("nested deeper than {MAX_DEPTH}"));
                }
                self.at += 1;
                let close = match b {
                    b'{' => b'}',
                    b'[' => b']',
                    _ => b')',
                };
                let mut items = Vec::new();
                loop {
                    self.skip_space();
                    match self.bytes.get(self.at) {
                        None => return Err(format!("unclosed {:?}", b as char)),
                        Some(&c) if c == close => {
                            self.at += 1;
                            break;
                        }
                        Some(_) => items.push(self.value()?),
                    }
                }
                self.depth -= 1;
                if b != b'{' {
                    return Ok(Edn::Vector(items));
                }
                if items.len() % 2 != 0 {
                    return Err("a map with an odd number of forms".into());
                }
                let mut entries = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    entries.push((k, v));
                }
                Ok(Edn::Map(entries))
            }
            b'"' => self.string(),
            b'}' | b']' | b')' => Err(format!("unexpected {:?} at column {}", b as char, self.at + 1)),
            _ => {
                let start = self.at;
                while self.bytes.get(self.at).is_some_and(|&c| {
                    !(c.is_ascii_whitespace() || matches!(c, b',' | b'{' | b'}' | b'[' | b']' | b'(' | b')' | b'"'))
                }) {
                    self.at += 1;
                }
                let token = std::str::from_utf8(&self.bytes[start..self.at]).map_err(|_| "not UTF-8")?;
                Ok(match token {
                    "nil" => Edn::Nil,
                    "true" => Edn::Bool(true),
                    "false" => Edn::Bool(false),
                    _ if token.starts_with(':') => Edn::Keyword(token[1..].to_owned()),
                    _ => match token.parse::<i64>() {
                        Ok(n) => Edn::Int(n),
                        Err(_) => Edn::Other(token.to_owned()),
                    },
                })
            }
        }
    }

    fn string(&mut self) -> Result<Edn, String> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.bytes.get(self.at) else { return Err("unclosed string".into()) };
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.bytes.get(self.at) else { return Err("unclosed string".into()) };
                    self.at += 1;
                    out.push(match e {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        other => other,
                    });
                }
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map(Edn::Str).map_err(|_| "a string that is not UTF-8".into())
    }
}
