//! Parser: tokens to a tree of [`Node`]s, checking at parse time what Go checks at parse time
//! (undefined functions and variables, `{{break}}` outside `{{range}}`, unbalanced `{{end}}`).

use super::lex::{Tok, Token};
use super::{Functions, TemplateError};

/// Deepest nesting of blocks and parentheses accepted (bounds recursion on hostile input).
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone)]
pub(super) enum Node {
    Text(String),
    Action(Pipe),
    If {
        pipe: Pipe,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        pipe: Pipe,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Range {
        pipe: Pipe,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Break(usize),
    Continue(usize),
}

#[derive(Debug, Clone)]
pub(super) struct Pipe {
    pub(super) line: usize,
    /// Variables declared (`:=`) or assigned (`=`).
    pub(super) vars: Vec<String>,
    pub(super) assign: bool,
    pub(super) cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub(super) struct Cmd {
    pub(super) args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub(super) enum Arg {
    /// `.A.B` on dot (empty chain = dot itself).
    Field(Vec<String>),
    /// `$x.A.B` (name empty = `$`).
    Var(String, Vec<String>),
    /// Function name.
    Func(String),
    Str(String),
    Int(i64),
    Bool(bool),
    Nil,
    /// `( pipeline ).A.B`.
    Sub(Box<Pipe>, Vec<String>),
}

pub(super) struct Parser<'f> {
    toks: Vec<Token>,
    pos: usize,
    funcs: &'f Functions,
    scopes: Vec<String>,
    range_depth: usize,
    depth: usize,
}

enum Terminator {
    Eof,
    End,
    Else(usize),
}

fn err(line: usize, msg: impl Into<String>) -> TemplateError {
    TemplateError {
        line,
        reason: msg.into(),
    }
}

impl<'f> Parser<'f> {
    pub(super) fn new(toks: Vec<Token>, funcs: &'f Functions) -> Self {
        Self {
            toks,
            pos: 0,
            funcs,
            scopes: vec![String::new()],
            range_depth: 0,
            depth: 0,
        }
    }

    pub(super) fn parse(mut self) -> Result<Vec<Node>, TemplateError> {
        let (nodes, end) = self.list()?;
        match end {
            Terminator::Eof => Ok(nodes),
            Terminator::End => Err(err(self.line(), "unexpected {{end}}")),
            Terminator::Else(line) => Err(err(line, "unexpected {{else}}")),
        }
    }

    fn line(&self) -> usize {
        self.toks
            .get(self.pos.saturating_sub(1))
            .or_else(|| self.toks.last())
            .map_or(1, |t| t.line)
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.kind)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn expect_close(&mut self, what: &str) -> Result<(), TemplateError> {
        match self.next() {
            Some(Token {
                kind: Tok::Close, ..
            }) => Ok(()),
            Some(t) => Err(err(t.line, format!("unexpected {:?} in {what}", t.kind))),
            None => Err(err(self.line(), "unexpected EOF")),
        }
    }

    /// Parses nodes until EOF, `{{end}}` or `{{else}}` (the terminator is consumed, except the
    /// rest of an `{{else ...}}` action).
    fn list(&mut self) -> Result<(Vec<Node>, Terminator), TemplateError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(self.line(), "template nested too deeply"));
        }
        let mut nodes = Vec::new();
        let end = loop {
            let Some(tok) = self.next() else {
                break Terminator::Eof;
            };
            match tok.kind {
                Tok::Text(t) => nodes.push(Node::Text(t)),
                Tok::Open => {
                    if let Some(end) = self.action(&mut nodes, tok.line)? {
                        break end;
                    }
                }
                other => return Err(err(tok.line, format!("unexpected {other:?}"))),
            }
        };
        self.depth -= 1;
        Ok((nodes, end))
    }

    fn action(
        &mut self,
        nodes: &mut Vec<Node>,
        line: usize,
    ) -> Result<Option<Terminator>, TemplateError> {
        let kw = match self.peek() {
            Some(Tok::Ident(k)) => k.clone(),
            _ => String::new(),
        };
        match kw.as_str() {
            "end" => {
                self.pos += 1;
                self.expect_close("end")?;
                Ok(Some(Terminator::End))
            }
            "else" => {
                self.pos += 1;
                Ok(Some(Terminator::Else(line)))
            }
            "if" | "with" | "range" => {
                self.pos += 1;
                let node = self.block(&kw, line)?;
                nodes.push(node);
                Ok(None)
            }
            "break" | "continue" => {
                self.pos += 1;
                if self.range_depth == 0 {
                    return Err(err(line, format!("{{{{{kw}}}}} outside {{{{range}}}}")));
                }
                self.expect_close(&kw)?;
                nodes.push(if kw == "break" {
                    Node::Break(line)
                } else {
                    Node::Continue(line)
                });
                Ok(None)
            }
            "define" | "template" | "block" => {
                Err(err(line, format!("{{{{{kw}}}}} is not supported")))
            }
            _ => {
                let pipe = self.pipeline(line, true, false)?;
                self.expect_close("command")?;
                nodes.push(Node::Action(pipe));
                Ok(None)
            }
        }
    }

    /// `if` / `with` / `range` after the keyword.
    fn block(&mut self, kw: &str, line: usize) -> Result<Node, TemplateError> {
        let mark = self.scopes.len();
        let pipe = self.pipeline(line, true, kw == "range")?;
        self.expect_close(kw)?;
        if kw == "range" {
            self.range_depth += 1;
        }
        let body = self.list();
        if kw == "range" {
            self.range_depth -= 1;
        }
        let (body, end) = body?;
        self.scopes.truncate(mark);
        let otherwise = match end {
            Terminator::Eof => return Err(err(line, format!("unexpected EOF in {{{{{kw}}}}}"))),
            Terminator::End => Vec::new(),
            Terminator::Else(else_line) => self.else_branch(kw, else_line)?,
        };
        self.scopes.truncate(mark);
        Ok(match kw {
            "if" => Node::If {
                pipe,
                then: body,
                otherwise,
            },
            "with" => Node::With {
                pipe,
                then: body,
                otherwise,
            },
            _ => Node::Range {
                pipe,
                body,
                otherwise,
            },
        })
    }

    /// After `{{else`: either `}}` then a list up to `{{end}}`, or `if ...` / `with ...` forming
    /// a chained block that shares the outer `{{end}}`.
    fn else_branch(&mut self, kw: &str, line: usize) -> Result<Vec<Node>, TemplateError> {
        if let Some(Tok::Ident(next)) = self.peek() {
            if (next == "if" && kw == "if") || (next == "with" && kw == "with") {
                let next = next.clone();
                self.pos += 1;
                return Ok(vec![self.block(&next, line)?]);
            }
        }
        self.expect_close("else")?;
        let (nodes, end) = self.list()?;
        match end {
            Terminator::End => Ok(nodes),
            Terminator::Eof => Err(err(line, "unexpected EOF")),
            Terminator::Else(l) => Err(err(l, "expected end; found {{else}}")),
        }
    }

    /// A pipeline, with optional declaration; stops before `}}` or `)`.
    fn pipeline(
        &mut self,
        line: usize,
        allow_decl: bool,
        range: bool,
    ) -> Result<Pipe, TemplateError> {
        let mut vars = Vec::new();
        let mut assign = false;
        if allow_decl {
            if let Some((v, a)) = self.declaration(range)? {
                vars = v;
                assign = a;
            }
        }
        let mut cmds = Vec::new();
        loop {
            let cmd = self.command()?;
            cmds.push(cmd);
            match self.peek() {
                Some(Tok::Pipe) => {
                    self.pos += 1;
                }
                _ => break,
            }
        }
        if !assign {
            self.scopes.extend(vars.iter().cloned());
        }
        Ok(Pipe {
            line,
            vars,
            assign,
            cmds,
        })
    }

    fn declaration(&mut self, range: bool) -> Result<Option<(Vec<String>, bool)>, TemplateError> {
        let var_at = |p: &Self, i: usize| match p.toks.get(i).map(|t| &t.kind) {
            Some(Tok::Var(name, f)) if f.is_empty() => Some(name.clone()),
            _ => None,
        };
        let Some(first) = var_at(self, self.pos) else {
            return Ok(None);
        };
        let kind_at = |p: &Self, i: usize| p.toks.get(i).map(|t| t.kind.clone());
        match kind_at(self, self.pos + 1) {
            Some(Tok::Declare) => {
                self.pos += 2;
                Ok(Some((vec![first], false)))
            }
            Some(Tok::Assign) => {
                if !self.scopes.contains(&first) {
                    return Err(err(self.line(), format!("undefined variable \"${first}\"")));
                }
                self.pos += 2;
                Ok(Some((vec![first], true)))
            }
            Some(Tok::Comma) if range => {
                let Some(second) = var_at(self, self.pos + 2) else {
                    return Err(err(self.line(), "too many declarations in range"));
                };
                match kind_at(self, self.pos + 3) {
                    Some(Tok::Declare) => {
                        self.pos += 4;
                        Ok(Some((vec![first, second], false)))
                    }
                    _ => Err(err(self.line(), "expected := after range variables")),
                }
            }
            _ => Ok(None),
        }
    }

    fn command(&mut self) -> Result<Cmd, TemplateError> {
        let mut args = Vec::new();
        loop {
            match self.peek() {
                None | Some(Tok::Close) | Some(Tok::Pipe) | Some(Tok::RParen) => break,
                _ => args.push(self.operand()?),
            }
        }
        if args.is_empty() {
            return Err(err(self.line(), "missing value for command"));
        }
        Ok(Cmd { args })
    }

    fn operand(&mut self) -> Result<Arg, TemplateError> {
        let Some(tok) = self.next() else {
            return Err(err(self.line(), "unexpected EOF"));
        };
        let arg = match tok.kind {
            Tok::Dot => Arg::Field(Vec::new()),
            Tok::Field(f) => Arg::Field(f),
            Tok::Var(name, f) => {
                if !self.scopes.contains(&name) {
                    return Err(err(tok.line, format!("undefined variable \"${name}\"")));
                }
                Arg::Var(name, f)
            }
            Tok::Str(s) => Arg::Str(s),
            Tok::Int(n) => Arg::Int(n),
            Tok::Ident(id) => match id.as_str() {
                "true" => Arg::Bool(true),
                "false" => Arg::Bool(false),
                "nil" => Arg::Nil,
                _ if self.funcs.has(&id) => Arg::Func(id),
                _ => return Err(err(tok.line, format!("function \"{id}\" not defined"))),
            },
            Tok::LParen => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(err(tok.line, "template nested too deeply"));
                }
                let pipe = self.pipeline(tok.line, true, false)?;
                self.depth -= 1;
                match self.next() {
                    Some(Token {
                        kind: Tok::RParen, ..
                    }) => {}
                    _ => return Err(err(tok.line, "unclosed left paren")),
                }
                let mut chain = Vec::new();
                if let Some(Tok::ChainField(f)) = self.peek() {
                    chain = f.clone();
                    self.pos += 1;
                }
                Arg::Sub(Box::new(pipe), chain)
            }
            other => return Err(err(tok.line, format!("unexpected {other:?} in operand"))),
        };
        Ok(arg)
    }
}
