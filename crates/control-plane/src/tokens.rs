//! The reference server's tokens file: one `<agent-id> <token>` line per token.
//!
//! - Blank lines are ignored; `#` at the start of a line, or after whitespace, starts a
//!   comment that runs to the end of the line (so `agent-c  # disabled` is an agent without
//!   a token, not a token `#`). A `#` inside a token (`abc#def`) is part of it.
//! - Every other line has exactly two fields separated by whitespace, and the token has at
//!   least [`MIN_TOKEN_CHARS`] characters. Anything else is an error naming the file and
//!   the line, never a silently accepted line: a file with a broken line grants nothing
//!   (the server refuses to start, and a file broken while it runs answers 503 until it is
//!   fixed), because guessing what a broken line meant is how a comment became a token.
//! - An agent may have several lines (a token being rotated); one token may not belong to
//!   two lines, since the token is what names the agent.
//!
//! Errors name the agent and the line, never the token.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Shortest token accepted: 16 characters, so a token cannot be guessed online (the server
/// answers every try) and a stray word or comment cannot become one.
pub const MIN_TOKEN_CHARS: usize = 16;

/// A tokens file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {problem}", path.display(), line.map(|n| format!(": line {n}")).unwrap_or_default())]
pub struct TokensError {
    /// The file.
    pub path: PathBuf,
    /// The line (1-based), when one line is at fault.
    pub line: Option<usize>,
    /// What is wrong.
    pub problem: String,
}

/// The tokens of a file, as SHA-256 digests: comparing digests takes the same time however
/// much of a token matched.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    entries: Vec<(String, [u8; 32])>,
}

/// SHA-256 of `text`.
pub(crate) fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// `line` without its comment: `#` at the start or after whitespace starts one.
fn strip_comment(line: &str) -> &str {
    let mut after_space = true;
    for (at, c) in line.char_indices() {
        if c == '#' && after_space {
            return &line[..at];
        }
        after_space = c.is_whitespace();
    }
    line
}

impl Tokens {
    /// Parses `text`, the contents of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, TokensError> {
        let error = |line: usize, problem: String| TokensError {
            path: path.to_owned(),
            line: Some(line),
            problem,
        };
        let mut entries: Vec<(String, [u8; 32])> = Vec::new();
        let mut lines_of: Vec<usize> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            let fields: Vec<&str> = strip_comment(raw).split_whitespace().collect();
            match fields.as_slice() {
                [] => continue,
                [agent] => {
                    return Err(error(
                        number,
                        format!(
                            "agent `{agent}` has no token; a line is `<agent-id> <token>` (a `#` after whitespace starts a comment)"
                        ),
                    ));
                }
                [agent, token] => {
                    let chars = token.chars().count();
                    if chars < MIN_TOKEN_CHARS {
                        return Err(error(
                            number,
                            format!(
                                "the token of agent `{agent}` has {chars} characters; at least {MIN_TOKEN_CHARS} are required"
                            ),
                        ));
                    }
                    let hash = digest(token);
                    if let Some(at) = entries.iter().position(|(_, h)| *h == hash) {
                        return Err(error(
                            number,
                            format!(
                                "the token of agent `{agent}` is also on line {}; a token names one agent",
                                lines_of[at]
                            ),
                        ));
                    }
                    entries.push(((*agent).to_owned(), hash));
                    lines_of.push(number);
                }
                more => {
                    return Err(error(
                        number,
                        format!(
                            "{} fields; a line is `<agent-id> <token>` (a `#` after whitespace starts a comment)",
                            more.len()
                        ),
                    ));
                }
            }
        }
        Ok(Self { entries })
    }

    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Self, TokensError> {
        let text = std::fs::read_to_string(path).map_err(|e| TokensError {
            path: path.to_owned(),
            line: None,
            problem: e.to_string(),
        })?;
        Self::parse(path, &text)
    }

    /// The agent `token` belongs to.
    pub fn agent_of(&self, token: &str) -> Option<&str> {
        let given = digest(token);
        self.entries
            .iter()
            .find(|(_, hash)| *hash == given)
            .map(|(agent, _)| agent.as_str())
    }

    /// How many tokens the file holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file holds no token.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Checks an operator (admin) token file: one line, at least [`MIN_TOKEN_CHARS`].
pub fn read_admin_token(path: &Path) -> Result<String, TokensError> {
    let token = crate::client::read_token(path).map_err(|e| TokensError {
        path: path.to_owned(),
        line: None,
        problem: match e {
            crate::ControlPlaneError::Token { problem, .. } => problem,
            other => other.to_string(),
        },
    })?;
    let chars = token.chars().count();
    if chars < MIN_TOKEN_CHARS {
        return Err(TokensError {
            path: path.to_owned(),
            line: Some(1),
            problem: format!(
                "the admin token has {chars} characters; at least {MIN_TOKEN_CHARS} are required"
            ),
        });
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Tokens, TokensError> {
        Tokens::parse(Path::new("/etc/outpost/tokens"), text)
    }

    #[test]
    fn comments_whitespace_and_blank_lines() {
        let tokens = parse(
            "# agents\n\n  agent-a\tagent-a-token-0123456789   # rotated in May\nagent-b agent-b#token-0123456789\n",
        )
        .expect("valid");
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens.agent_of("agent-a-token-0123456789"), Some("agent-a"));
        // A `#` inside a token is part of it.
        assert_eq!(tokens.agent_of("agent-b#token-0123456789"), Some("agent-b"));
        assert_eq!(tokens.agent_of("#"), None);
        assert_eq!(tokens.agent_of("# rotated in May"), None);
    }

    #[test]
    fn a_lone_agent_with_a_comment_is_an_error_naming_the_line() {
        let error =
            parse("agent-a agent-a-token-0123456789\nagent-c  # disabled until onboarding\n")
                .expect_err("no token")
                .to_string();
        assert!(
            error.starts_with("/etc/outpost/tokens: line 2: "),
            "{error}"
        );
        assert!(error.contains("agent `agent-c` has no token"), "{error}");
    }

    #[test]
    fn three_fields_short_tokens_and_shared_tokens_are_errors() {
        let three = parse("agent-a token-a-0123456789 extra\n").expect_err("3 fields");
        assert_eq!(three.line, Some(1));
        assert!(three.problem.contains("3 fields"), "{three}");
        let short = parse("\n\nagent-a short-token\n").expect_err("short");
        assert_eq!(short.line, Some(3));
        assert!(
            short.problem.contains("11 characters; at least 16"),
            "{short}"
        );
        assert!(
            !short.to_string().contains("short-token"),
            "the token is never shown"
        );
        let shared = parse("agent-a token-0123456789abcdef\nagent-b token-0123456789abcdef\n")
            .expect_err("shared");
        assert_eq!(shared.line, Some(2));
        assert!(shared.problem.contains("also on line 1"), "{shared}");
    }
}
