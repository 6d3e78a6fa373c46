//! Java-properties text (what Kafka's `server.properties` is) into `key = value` entries.
//!
//! The subset of `java.util.Properties.load` that config files use:
//! - a line is `key=value`, `key: value` or `key value`; whitespace around the key, the
//!   separator and the value is dropped (Java keeps a value's trailing whitespace; a
//!   config value never means it, so it is trimmed here);
//! - lines whose first non-blank character is `#` or `!` are comments; blank lines are
//!   skipped;
//! - a line ending in an odd number of backslashes continues on the next line, whose
//!   leading whitespace is dropped;
//! - backslash escapes: `\t`, `\n`, `\r`, `\f`, `\uXXXX`, and `\` before any other
//!   character stands for that character (`\=`, `\:`, `\ `, `\\`).
//!
//! Unlike Java, which keeps the last, a key given twice is an error: in a config file it
//! is a mistake, and which value wins should not depend on line order.

use std::collections::BTreeMap;

use crate::ConfigError;

/// One `key = value` of a properties file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// 1-based number of the line the entry starts on.
    pub line: usize,
}

/// Parses properties text into entries, in file order.
///
/// # Errors
/// [`ConfigError::DuplicateKey`] for a key given twice (naming both lines),
/// [`ConfigError::Syntax`] for a line with a separator but no key, or a bad `\u` escape.
pub fn parse_properties(text: &str) -> Result<Vec<Entry>, ConfigError> {
    let mut entries = Vec::new();
    let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    while let Some((line, natural)) = lines.next() {
        let trimmed = trim_start(natural);
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        // Join continuation lines into one logical line.
        let mut logical = String::from(trimmed);
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(trim_start(next)),
                None => break,
            }
        }
        let (key, value) =
            split_entry(&logical).map_err(|message| ConfigError::Syntax { line, message })?;
        if key.is_empty() {
            return Err(ConfigError::Syntax {
                line,
                message: "no key before the separator".into(),
            });
        }
        if let Some(&first) = first_line.get(&key) {
            return Err(ConfigError::DuplicateKey { key, first, line });
        }
        first_line.insert(key.clone(), line);
        entries.push(Entry { key, value, line });
    }
    Ok(entries)
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

fn trim_start(s: &str) -> &str {
    s.trim_start_matches(is_blank)
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// Splits a logical line into its unescaped key and value.
fn split_entry(logical: &str) -> Result<(String, String), String> {
    // The key ends at the first unescaped '=', ':' or blank.
    let mut key_end = logical.len();
    let mut escaped = false;
    for (i, c) in logical.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || is_blank(c) {
            key_end = i;
            break;
        }
    }
    let (raw_key, rest) = logical.split_at(key_end);
    // Blanks, then at most one '=' or ':', then blanks.
    let rest = trim_start(rest);
    let rest = rest
        .strip_prefix('=')
        .or_else(|| rest.strip_prefix(':'))
        .unwrap_or(rest);
    let raw_value = trim_start(rest).trim_end_matches(is_blank);
    Ok((unescape(raw_key)?, unescape(raw_value)?))
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let c = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("bad unicode escape \\u{hex}"))?;
                out.push(c);
            }
            Some(other) => out.push(other),
            // A lone trailing backslash (only possible on the file's last line).
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String, usize)> {
        parse_properties(text)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value, e.line))
            .collect()
    }

    fn p(key: &str, value: &str, line: usize) -> (String, String, usize) {
        (key.to_string(), value.to_string(), line)
    }

    #[test]
    fn the_three_separators_and_surrounding_whitespace() {
        let text = "a=1\nb: 2\nc 3\n  d  =  4  \ne\t:\tfive six\nf=\ng\n";
        assert_eq!(
            pairs(text),
            vec![
                p("a", "1", 1),
                p("b", "2", 2),
                p("c", "3", 3),
                p("d", "4", 4),
                p("e", "five six", 5),
                p("f", "", 6),
                p("g", "", 7),
            ]
        );
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let text =
            "# a comment\n! another\n\n   \n  # indented comment\nkey=value # not a comment\n";
        assert_eq!(pairs(text), vec![p("key", "value # not a comment", 6)]);
    }

    #[test]
    fn backslash_continues_a_line_and_drops_the_next_lines_indent() {
        let text = "listeners=PLAINTEXT://:9092,\\\n          CONTROLLER://:9093\nnext=1\n";
        assert_eq!(
            pairs(text),
            vec![
                p("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093", 1),
                p("next", "1", 3),
            ]
        );
        // An even number of backslashes is an escaped backslash, not a continuation.
        assert_eq!(
            pairs("dir=C:\\\\\nx=1"),
            vec![p("dir", "C:\\", 1), p("x", "1", 2)]
        );
        // A continued comment line is still just a comment (as in Java).
        assert_eq!(pairs("# c \\\nx=1"), vec![p("x", "1", 2)]);
        // Continuation at the end of the file.
        assert_eq!(pairs("x=1\\"), vec![p("x", "1", 1)]);
    }

    #[test]
    fn escapes_in_keys_and_values() {
        assert_eq!(
            pairs("a\\=b=c\\:d\nu=\\u00e9\\t"),
            vec![p("a=b", "c:d", 1), p("u", "é\t", 2)]
        );
        assert!(matches!(
            parse_properties("u=\\u12"),
            Err(ConfigError::Syntax { line: 1, .. })
        ));
    }

    #[test]
    fn crlf_line_endings() {
        assert_eq!(
            pairs("a=1\r\nb=2\r\n"),
            vec![p("a", "1", 1), p("b", "2", 2)]
        );
    }

    #[test]
    fn a_key_given_twice_names_both_lines() {
        let err = parse_properties("num.partitions=1\n# x\nnum.partitions = 3\n").unwrap_err();
        assert_eq!(
            err,
            ConfigError::DuplicateKey {
                key: "num.partitions".into(),
                first: 1,
                line: 3
            }
        );
        let message = err.to_string();
        assert!(message.contains("num.partitions"), "{message}");
        assert!(
            message.contains("line 3") && message.contains("line 1"),
            "{message}"
        );
    }

    #[test]
    fn a_separator_without_a_key_is_an_error() {
        let err = parse_properties("a=1\n=2\n").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { line: 2, .. }), "{err}");
    }
}
