//! Lexer for the Go `text/template` subset: splits text from `{{ actions }}`, applies the
//! `{{- ` / ` -}}` trim markers, drops `{{/* comments */}}`, and tokenizes action bodies.
//! Follows Go's `text/template/parse/lex.go` where the subset overlaps.

use super::TemplateError;

/// One token, with the line it starts on and whether whitespace preceded it (needed to tell
/// `(x).F` from `(x) .F`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) kind: Tok,
    pub(super) line: usize,
    pub(super) spaced: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// Literal text outside actions.
    Text(String),
    /// `{{`.
    Open,
    /// `}}`.
    Close,
    /// Identifier or keyword (`if`, `range`, `parseNumberRange`, `true`, ...).
    Ident(String),
    /// `.` alone.
    Dot,
    /// `.A.B` — field chain on dot.
    Field(Vec<String>),
    /// `.A` directly after a term: chain continuation (`(x).A`).
    ChainField(Vec<String>),
    /// `$`, `$x`, `$x.A.B`: name (empty for `$`) and field chain.
    Var(String, Vec<String>),
    /// String literal (quotes removed, escapes applied).
    Str(String),
    /// Integer literal (also char constants).
    Int(i64),
    /// `:=`.
    Declare,
    /// `=`.
    Assign,
    /// `|`.
    Pipe,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `,`.
    Comma,
}

const OPEN: &str = "{{";
const CLOSE: &str = "}}";

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn err(line: usize, msg: impl Into<String>) -> TemplateError {
    TemplateError {
        line,
        reason: msg.into(),
    }
}

/// Tokenizes the whole template.
pub(super) fn lex(src: &str) -> Result<Vec<Token>, TemplateError> {
    let mut toks: Vec<Token> = Vec::new();
    let mut line = 1usize;
    let mut rest = src;
    let mut trim_next = false;
    loop {
        let (text, after) = match rest.find(OPEN) {
            Some(i) => (&rest[..i], Some(&rest[i + OPEN.len()..])),
            None => (rest, None),
        };
        let mut text = text;
        if trim_next {
            text = text.trim_start_matches(is_space);
        }
        let Some(after) = after else {
            push_text(&mut toks, text, line);
            return Ok(toks);
        };
        // Left trim marker: "{{-" followed by a space.
        let left_trim = after.starts_with('-') && after[1..].starts_with(is_space);
        if left_trim {
            text = text.trim_end_matches(is_space);
        }
        push_text(&mut toks, text, line);
        line += rest[..rest.len() - after.len()].matches('\n').count();
        let mut body = if left_trim { &after[2..] } else { after };
        let action_line = line;
        // Comments: "{{/*" ... "*/}}", with optional trim markers.
        let trimmed = body.trim_start_matches(is_space);
        if trimmed.starts_with("/*") && (left_trim || trimmed.len() == body.len()) {
            let Some(end) = trimmed.find("*/") else {
                return Err(err(action_line, "unclosed comment"));
            };
            let tail = &trimmed[end + 2..];
            let (close_trim, tail) = match close_at(tail) {
                Some(x) => x,
                None => return Err(err(action_line, "comment ends before closing delimiter")),
            };
            line += body[..body.len() - tail.len()].matches('\n').count();
            trim_next = close_trim;
            rest = tail;
            continue;
        }
        toks.push(Token {
            kind: Tok::Open,
            line,
            spaced: false,
        });
        let (close_trim, tail) = lex_action(&mut body, &mut toks, &mut line)?;
        trim_next = close_trim;
        rest = tail;
    }
}

fn push_text(toks: &mut Vec<Token>, text: &str, line: usize) {
    if !text.is_empty() {
        toks.push(Token {
            kind: Tok::Text(text.to_string()),
            line,
            spaced: false,
        });
    }
}

/// If `s` (after optional spaces) is a closing delimiter, returns (trim, text after it).
fn close_at(s: &str) -> Option<(bool, &str)> {
    if let Some(t) = s.strip_prefix(CLOSE) {
        return Some((false, t));
    }
    let t = s.trim_start_matches(is_space);
    if t.len() < s.len() {
        if let Some(t) = t.strip_prefix("-}}") {
            return Some((true, t));
        }
        if let Some(t) = t.strip_prefix(CLOSE) {
            return Some((false, t));
        }
    }
    None
}

/// Lexes one action body up to and including its closing delimiter.
fn lex_action<'a>(
    body: &mut &'a str,
    toks: &mut Vec<Token>,
    line: &mut usize,
) -> Result<(bool, &'a str), TemplateError> {
    let mut s: &'a str = body;
    let mut spaced = true;
    let mut depth = 0usize;
    loop {
        if let Some((trim, tail)) = close_at(s) {
            if depth > 0 {
                return Err(err(*line, "unclosed left paren"));
            }
            *line += s[..s.len() - tail.len()].matches('\n').count();
            toks.push(Token {
                kind: Tok::Close,
                line: *line,
                spaced,
            });
            return Ok((trim, tail));
        }
        let Some(c) = s.chars().next() else {
            return Err(err(*line, "unclosed action"));
        };
        if is_space(c) {
            let t = s.trim_start_matches(is_space);
            *line += s[..s.len() - t.len()].matches('\n').count();
            s = t;
            spaced = true;
            continue;
        }
        let start_line = *line;
        let (kind, len) = match c {
            '|' => (Tok::Pipe, 1),
            ',' => (Tok::Comma, 1),
            '(' => {
                depth += 1;
                (Tok::LParen, 1)
            }
            ')' => {
                if depth == 0 {
                    return Err(err(*line, "unexpected right paren"));
                }
                depth -= 1;
                (Tok::RParen, 1)
            }
            ':' if s.starts_with(":=") => (Tok::Declare, 2),
            '=' => (Tok::Assign, 1),
            '"' => lex_quoted(s, *line)?,
            '`' => match s[1..].find('`') {
                Some(end) => (Tok::Str(s[1..1 + end].to_string()), end + 2),
                None => return Err(err(*line, "unterminated raw quoted string")),
            },
            '\'' => lex_char(s, *line)?,
            '$' => {
                let n = ident_len(&s[1..]);
                let name = s[1..1 + n].to_string();
                let (fields, flen) = lex_fields(&s[1 + n..]);
                (Tok::Var(name, fields), 1 + n + flen)
            }
            '.' => {
                if s[1..].starts_with(|c: char| c.is_ascii_digit()) {
                    return Err(err(*line, "floating-point numbers are not supported"));
                }
                let (fields, flen) = lex_fields(s);
                if fields.is_empty() {
                    (Tok::Dot, 1)
                } else if !spaced && matches!(toks.last().map(|t| &t.kind), Some(Tok::RParen)) {
                    (Tok::ChainField(fields), flen)
                } else {
                    (Tok::Field(fields), flen)
                }
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+') && s[1..].starts_with(|d: char| d.is_ascii_digit())) =>
            {
                lex_number(s, *line)?
            }
            c if c.is_alphabetic() || c == '_' => {
                let n = ident_len(s);
                (Tok::Ident(s[..n].to_string()), n)
            }
            other => return Err(err(*line, format!("unexpected {other:?} in command"))),
        };
        *line += s[..len].matches('\n').count();
        toks.push(Token {
            kind,
            line: start_line,
            spaced,
        });
        s = &s[len..];
        spaced = false;
    }
}

fn ident_len(s: &str) -> usize {
    s.char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
        .map_or(s.len(), |(i, _)| i)
}

/// Lexes `.A.B...`; returns the names and the byte length consumed.
fn lex_fields(s: &str) -> (Vec<String>, usize) {
    let mut fields = Vec::new();
    let mut pos = 0;
    while s[pos..].starts_with('.') {
        let n = ident_len(&s[pos + 1..]);
        if n == 0 {
            break;
        }
        fields.push(s[pos + 1..pos + 1 + n].to_string());
        pos += 1 + n;
    }
    (fields, pos)
}

fn lex_quoted(s: &str, line: usize) -> Result<(Tok, usize), TemplateError> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((Tok::Str(out), i + 1)),
            '\n' => break,
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                out.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '\\' => '\\',
                    '"' => '"',
                    '\'' => '\'',
                    '0' => '\0',
                    other => return Err(err(line, format!("unsupported escape \\{other}"))),
                });
            }
            c => out.push(c),
        }
    }
    Err(err(line, "unterminated quoted string"))
}

fn lex_char(s: &str, line: usize) -> Result<(Tok, usize), TemplateError> {
    let mut it = s.char_indices().skip(1);
    let (c, end) = match (it.next(), it.next()) {
        (Some((_, '\\')), Some((_, e))) => {
            let v = match e {
                'n' => '\n',
                't' => '\t',
                '\\' => '\\',
                '\'' => '\'',
                _ => return Err(err(line, "unsupported character escape")),
            };
            (v, it.next())
        }
        (Some((_, c)), next) => (c, next),
        _ => return Err(err(line, "unterminated character constant")),
    };
    match end {
        Some((i, '\'')) => Ok((Tok::Int(c as i64), i + 1)),
        _ => Err(err(line, "unterminated character constant")),
    }
}

fn lex_number(s: &str, line: usize) -> Result<(Tok, usize), TemplateError> {
    let len = s
        .char_indices()
        .skip(1)
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .map_or(s.len(), |(i, _)| i);
    let text = &s[..len];
    let (neg, digits) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let clean = digits.replace('_', "");
    let lower = clean.to_ascii_lowercase();
    let parsed = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16)
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8)
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2)
    } else if lower.len() > 1 && lower.starts_with('0') {
        i64::from_str_radix(&lower[1..], 8)
    } else {
        lower.parse::<i64>()
    };
    match parsed {
        Ok(n) => Ok((Tok::Int(if neg { -n } else { n }), len)),
        Err(_) => Err(err(line, format!("bad number syntax: {text:?}"))),
    }
}
