//! Bearer-token access control.
//!
//! Each token has a name (who holds it, for logs) and a role:
//!
//! | role       | may                                                     |
//! |------------|---------------------------------------------------------|
//! | `viewer`   | read every resource                                     |
//! | `operator` | also create and delete intents, submit jobs            |
//! | `admin`    | everything, including reloading the token file         |
//!
//! Tokens come from a file or from the `SOLYX_API_TOKENS` variable, one
//! token per line (`;` also separates entries in the variable):
//!
//! ```text
//! # role     name    token (at least 16 characters)
//! admin      alice   3f9d2c0e8b7a4f61a2c5d9e0b1f3c7a8
//! operator   ci      8c1e55b0f2a94d7d9e6b3a0c4f1d2e77
//! viewer     grafana 0d4b7e2a9c1f8e36b5a0d2c7e9f1a4b3
//! ```
//!
//! Only SHA-256 digests of the tokens are kept; a presented token's digest
//! is compared with every known digest in constant time (`subtle`), so
//! response timing tells nothing about a token's content or length.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

/// Shortest token accepted, in bytes.
pub const MIN_TOKEN_LEN: usize = 16;

/// The variable that may hold tokens.
pub const TOKENS_ENV: &str = "SOLYX_API_TOKENS";

/// What a token holder may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read only.
    Viewer,
    /// Read, and change intents and jobs.
    Operator,
    /// Everything.
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        })
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Self::Viewer),
            "operator" => Ok(Self::Operator),
            "admin" => Ok(Self::Admin),
            other => Err(format!(
                "unknown role {other:?} (viewer, operator or admin)"
            )),
        }
    }
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name.
    pub name: String,
    /// The token's role.
    pub role: Role,
}

#[derive(Clone)]
struct Token {
    principal: Principal,
    digest: [u8; 32],
}

fn digest(secret: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, secret);
    let mut out = [0; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

/// A token list that cannot be used, naming the place.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file could not be read.
    #[error("token file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `ROLE NAME TOKEN`, or its token is weak or repeated.
    #[error("{origin}, line {line}: {reason}")]
    Line {
        /// The file path or the variable name.
        origin: String,
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Parses a token list (see the module documentation for the format).
///
/// # Errors
/// [`TokenError::Line`] naming `origin` and the line.
fn parse(origin: &str, text: &str, separators: &[char]) -> Result<Vec<Token>, TokenError> {
    let mut tokens: Vec<Token> = Vec::new();
    for (i, line) in text.split(separators).enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |reason: String| TokenError::Line {
            origin: origin.into(),
            line: i + 1,
            reason,
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [role, name, secret] = fields[..] else {
            return Err(fail(format!(
                "expected `ROLE NAME TOKEN`, found {} fields",
                fields.len()
            )));
        };
        let role: Role = role.parse().map_err(fail)?;
        if secret.len() < MIN_TOKEN_LEN {
            return Err(fail(format!(
                "token of {name:?} is shorter than {MIN_TOKEN_LEN} characters"
            )));
        }
        let digest = digest(secret.as_bytes());
        if tokens.iter().any(|t| t.digest == digest) {
            return Err(fail(format!(
                "token of {name:?} is also given to another name"
            )));
        }
        tokens.push(Token {
            principal: Principal {
                name: name.into(),
                role,
            },
            digest,
        });
    }
    Ok(tokens)
}

/// Where the tokens come from, so that they can be reloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// A file.
    File(PathBuf),
    /// The text of the `SOLYX_API_TOKENS` variable, read at startup.
    Env(String),
    /// Given directly (tests, embedding).
    Inline(String),
    /// No authentication at all: every request is an admin. For a lab on
    /// loopback only.
    Disabled,
}

/// The tokens the API accepts.
#[derive(Debug)]
pub struct Auth {
    source: TokenSource,
    tokens: RwLock<Vec<Token>>,
}

impl Auth {
    /// Loads tokens from `source`.
    ///
    /// # Errors
    /// [`TokenError`] naming the file (or variable) and the line.
    pub fn load(source: TokenSource) -> Result<Self, TokenError> {
        let tokens = Self::read(&source)?;
        Ok(Self {
            source,
            tokens: RwLock::new(tokens),
        })
    }

    fn read(source: &TokenSource) -> Result<Vec<Token>, TokenError> {
        match source {
            TokenSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
                    path: path.clone(),
                    source,
                })?;
                parse(&path.display().to_string(), &text, &['\n'])
            }
            TokenSource::Env(text) => parse(TOKENS_ENV, text, &['\n', ';']),
            TokenSource::Inline(text) => parse("tokens", text, &['\n', ';']),
            TokenSource::Disabled => Ok(Vec::new()),
        }
    }

    /// Reads the token source again (a file may have changed); the old
    /// tokens stay when the new list is unusable.
    ///
    /// # Errors
    /// [`TokenError`]; the tokens in force do not change.
    pub fn reload(&self) -> Result<usize, TokenError> {
        let tokens = Self::read(&self.source)?;
        let n = tokens.len();
        *self
            .tokens
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = tokens;
        Ok(n)
    }

    /// Whether authentication is off.
    #[must_use]
    pub fn disabled(&self) -> bool {
        self.source == TokenSource::Disabled
    }

    /// Whether no token is configured (every request would be refused).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tokens
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty()
    }

    /// The holder of `presented`, comparing it with every token in constant
    /// time.
    #[must_use]
    pub fn verify(&self, presented: &[u8]) -> Option<Principal> {
        if self.disabled() {
            return Some(Principal {
                name: "anonymous".into(),
                role: Role::Admin,
            });
        }
        let tokens = self
            .tokens
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let presented = digest(presented);
        let mut found = None;
        // No early exit: every token is compared whatever matched.
        for t in tokens.iter() {
            if bool::from(t.digest.ct_eq(&presented)) {
                found = Some(t.principal.clone());
            }
        }
        found
    }
}

/// Where a token file's path comes from on the command line: `--tokens` or
/// the variable, in that order.
///
/// # Errors
/// When neither is given and `insecure` is not set.
pub fn source_from(
    file: Option<&Path>,
    env_text: Option<String>,
    insecure: bool,
) -> Result<TokenSource, String> {
    if insecure {
        return Ok(TokenSource::Disabled);
    }
    if let Some(f) = file {
        return Ok(TokenSource::File(f.to_path_buf()));
    }
    if let Some(text) = env_text.filter(|t| !t.trim().is_empty()) {
        return Ok(TokenSource::Env(text));
    }
    Err(format!(
        "no API tokens: give --tokens FILE or {TOKENS_ENV} (format in docs/api.md), \
         or --insecure-no-auth for a loopback lab"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_resolve_to_their_holder() {
        let auth = Auth::load(TokenSource::Inline(
            "# comment\nadmin alice aaaaaaaaaaaaaaaaaaaa\nviewer bob bbbbbbbbbbbbbbbbbbbb".into(),
        ))
        .unwrap();
        let p = auth.verify(b"bbbbbbbbbbbbbbbbbbbb").unwrap();
        assert_eq!((p.name.as_str(), p.role), ("bob", Role::Viewer));
        assert!(auth.verify(b"bbbbbbbbbbbbbbbbbbbX").is_none());
        assert!(auth.verify(b"").is_none());
    }

    #[test]
    fn bad_lines_are_named() {
        for (text, line, words) in [
            ("admin alice", 1, "expected `ROLE NAME TOKEN`"),
            (
                "\n\nroot alice aaaaaaaaaaaaaaaaaaaa",
                3,
                "unknown role \"root\"",
            ),
            ("viewer bob short", 1, "shorter than 16"),
            (
                "viewer a aaaaaaaaaaaaaaaaaaaa\nadmin b aaaaaaaaaaaaaaaaaaaa",
                2,
                "also given",
            ),
        ] {
            let e = Auth::load(TokenSource::Inline(text.into())).unwrap_err();
            match &e {
                TokenError::Line {
                    line: l, reason, ..
                } => {
                    assert_eq!(*l, line, "{e}");
                    assert!(reason.contains(words), "{e}");
                }
                TokenError::Read { .. } => panic!("{e}"),
            }
        }
    }
}
