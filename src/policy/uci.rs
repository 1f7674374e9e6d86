//! UCI, the syntax of OpenWrt's config files, read the way libuci reads
//! it: `config TYPE ['NAME']` sections with `option` and `list` lines,
//! single and double quotes, backslash escapes, `#` comments. Written by
//! hand: the only UCI crate binds libuci through FFI, which is not on a
//! build host. Every error names the file and line it failed on; control
//! characters are refused.
//!
//! Limits: no `package` statement (skipped), no anonymous-section
//! `@type[n]` syntax (not needed in files), no line continuation.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// One `config TYPE 'NAME'` block with its options in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub kind: String,
    pub name: Option<String>,
    pub line: usize,
    /// (key, value, line); a `list` key appears once per value.
    pub options: Vec<(String, String, usize)>,
}

/// Splits one line into UCI words, honouring quotes and escapes.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek() {
            None | Some('#') => return Ok(out),
            _ => {}
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            match c {
                c if c.is_whitespace() => break,
                '#' if word.is_empty() => break,
                '\'' => {
                    chars.next();
                    loop {
                        match chars.next() {
                            Some('\'') => break,
                            Some(c) => word.push(c),
                            None => return Err("unterminated single quote".into()),
                        }
                    }
                }
                '"' => {
                    chars.next();
                    loop {
                        match chars.next() {
                            Some('"') => break,
                            Some('\\') => match chars.next() {
                                Some(c) => word.push(c),
                                None => return Err("unterminated double quote".into()),
                            },
                            Some(c) => word.push(c),
                            None => return Err("unterminated double quote".into()),
                        }
                    }
                }
                '\\' => {
                    chars.next();
                    if let Some(c) = chars.next() {
                        word.push(c);
                    }
                }
                c => {
                    chars.next();
                    word.push(c);
                }
            }
        }
        out.push(word);
    }
}

/// Parses UCI text into sections.
pub fn parse_uci(text: &str, path: &Path) -> Result<Vec<Section>, ConfigError> {
    let err = |line: usize, message: String| ConfigError {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut sections: Vec<Section> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        // No value may hold a NUL (paths end there for the C library) or
        // another control character but tab.
        if let Some(c) = raw
            .chars()
            .find(|c| c.is_control() && *c != '\t' && *c != '\r')
        {
            return Err(err(
                line_no,
                format!("control character U+{:04X} in the line", c as u32),
            ));
        }
        let w = words(raw).map_err(|m| err(line_no, m))?;
        let Some(first) = w.first() else { continue };
        match first.as_str() {
            "config" => {
                if w.len() < 2 || w.len() > 3 {
                    return Err(err(line_no, "expected: config TYPE ['NAME']".into()));
                }
                if !valid_ident(&w[1]) {
                    return Err(err(line_no, format!("invalid section type '{}'", w[1])));
                }
                sections.push(Section {
                    kind: w[1].clone(),
                    name: w.get(2).cloned(),
                    line: line_no,
                    options: Vec::new(),
                });
            }
            "option" | "list" => {
                if w.len() != 3 {
                    return Err(err(line_no, format!("expected: {first} NAME 'VALUE'")));
                }
                if !valid_ident(&w[1]) {
                    return Err(err(line_no, format!("invalid option name '{}'", w[1])));
                }
                let Some(section) = sections.last_mut() else {
                    return Err(err(line_no, format!("'{first}' before any 'config' line")));
                };
                section.options.push((w[1].clone(), w[2].clone(), line_no));
            }
            "package" => {}
            other => {
                return Err(err(
                    line_no,
                    format!("unknown statement '{other}' (expected config, option or list)"),
                ))
            }
        }
    }
    Ok(sections)
}

fn valid_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_rules_match_libuci() {
        assert_eq!(
            words(r#"option a 'x y'"#).unwrap(),
            vec!["option", "a", "x y"]
        );
        assert_eq!(
            words(r#"option a "x\"y""#).unwrap(),
            vec!["option", "a", "x\"y"]
        );
        assert_eq!(words(r"option a x\ y").unwrap(), vec!["option", "a", "x y"]);
        assert_eq!(words("option a b # c").unwrap(), vec!["option", "a", "b"]);
    }
}
