//! Evaluator: walks the parsed tree over a [`Val`] data model, printing like Go's `fmt` `%v`.
//! Work is bounded by [`MAX_STEPS`], [`MAX_OUTPUT`] and [`MAX_WORK_BYTES`] so hostile
//! templates cannot hang or exhaust memory.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::parse::{Arg, Cmd, Node, Pipe};
use super::{Functions, TemplateError};

/// Evaluation steps allowed per render.
const MAX_STEPS: u64 = 10_000_000;
/// Output bytes allowed per render.
const MAX_OUTPUT: usize = 64 << 20;
/// String bytes that variable reads and function calls may copy, take or produce per
/// render. Steps alone do not bound the work: `{{ $x = print $x $x }}` in a `range`
/// doubles a string per step, and copying or comparing a long string is one step
/// (found by the `conf_template` fuzz target).
const MAX_WORK_BYTES: u64 = 256 << 20;

/// A template value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
    /// Go's invalid value (missing map key); prints `<no value>`.
    Missing,
    /// `nil`.
    Nil,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Rc<Vec<Val>>),
    /// A map with string keys (`.Envs`): missing keys are [`Val::Missing`].
    Map(Rc<BTreeMap<String, Val>>),
    /// A struct (`{Envs}`, `{First, Second}`): missing fields are errors.
    Struct(&'static str, Rc<Vec<(&'static str, Val)>>),
}

impl Val {
    pub(super) fn truthy(&self) -> bool {
        match self {
            Val::Missing | Val::Nil => false,
            Val::Bool(b) => *b,
            Val::Int(n) => *n != 0,
            Val::Str(s) => !s.is_empty(),
            Val::List(l) => !l.is_empty(),
            Val::Map(m) => !m.is_empty(),
            Val::Struct(..) => true,
        }
    }

    /// String bytes this value carries inline (containers are shared, not copied).
    fn inline_bytes(&self) -> u64 {
        match self {
            Val::Str(s) => s.len() as u64,
            _ => 0,
        }
    }

    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Val::Missing => "<no value>",
            Val::Nil => "nil",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Str(_) => "string",
            Val::List(_) => "slice",
            Val::Map(_) => "map",
            Val::Struct(name, _) => name,
        }
    }

    /// Go `fmt.Sprint`-style rendering.
    pub(super) fn print(&self, out: &mut String) {
        match self {
            Val::Missing => out.push_str("<no value>"),
            Val::Nil => out.push_str("<nil>"),
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Val::Int(n) => out.push_str(&n.to_string()),
            Val::Str(s) => out.push_str(s),
            Val::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.print(out);
                }
                out.push(']');
            }
            Val::Map(m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.print(out);
                }
                out.push(']');
            }
            Val::Struct(_, fields) => {
                out.push('{');
                for (i, (_, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.print(out);
                }
                out.push('}');
            }
        }
    }

    fn field(&self, name: &str) -> Result<Val, String> {
        match self {
            Val::Map(m) => Ok(m.get(name).cloned().unwrap_or(Val::Missing)),
            Val::Struct(ty, fields) => fields
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| format!("can't evaluate field {name} in type {ty}")),
            Val::Missing | Val::Nil => Err(format!("nil pointer evaluating {name}")),
            other => Err(format!(
                "can't evaluate field {name} in type {}",
                other.type_name()
            )),
        }
    }
}

enum Flow {
    Normal,
    Break,
    Continue,
}

pub(super) struct Exec<'f> {
    funcs: &'f Functions,
    vars: Vec<(String, Val)>,
    out: String,
    steps: u64,
    work_bytes: u64,
}

fn err(line: usize, msg: impl Into<String>) -> TemplateError {
    TemplateError {
        line,
        reason: msg.into(),
    }
}

impl<'f> Exec<'f> {
    pub(super) fn new(funcs: &'f Functions, root: Val) -> Self {
        Self {
            funcs,
            vars: vec![(String::new(), root)],
            out: String::new(),
            steps: 0,
            work_bytes: 0,
        }
    }

    pub(super) fn run(mut self, nodes: &[Node]) -> Result<String, TemplateError> {
        let dot = self.vars[0].1.clone();
        self.walk(nodes, &dot)?;
        Ok(self.out)
    }

    fn tick(&mut self, line: usize) -> Result<(), TemplateError> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(err(line, "template execution exceeds the step limit"));
        }
        if self.out.len() > MAX_OUTPUT {
            return Err(err(line, "template output exceeds the size limit"));
        }
        Ok(())
    }

    /// Accounts for `bytes` string bytes copied, compared or produced.
    fn charge(&mut self, line: usize, bytes: u64) -> Result<(), TemplateError> {
        self.work_bytes = self.work_bytes.saturating_add(bytes);
        if self.work_bytes > MAX_WORK_BYTES {
            return Err(err(line, "template execution exceeds the work limit"));
        }
        Ok(())
    }

    fn walk(&mut self, nodes: &[Node], dot: &Val) -> Result<Flow, TemplateError> {
        for node in nodes {
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(pipe) => {
                    self.tick(pipe.line)?;
                    let v = self.pipe(pipe, dot)?;
                    if pipe.vars.is_empty() {
                        v.print(&mut self.out);
                    }
                }
                Node::If {
                    pipe,
                    then,
                    otherwise,
                }
                | Node::With {
                    pipe,
                    then,
                    otherwise,
                } => {
                    self.tick(pipe.line)?;
                    let mark = self.vars.len();
                    let v = self.pipe(pipe, dot)?;
                    let flow = if v.truthy() {
                        let inner = if matches!(node, Node::With { .. }) {
                            v
                        } else {
                            dot.clone()
                        };
                        self.walk(then, &inner)?
                    } else {
                        self.walk(otherwise, dot)?
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                } => self.range(pipe, body, otherwise, dot)?,
                Node::Break(line) => {
                    self.tick(*line)?;
                    return Ok(Flow::Break);
                }
                Node::Continue(line) => {
                    self.tick(*line)?;
                    return Ok(Flow::Continue);
                }
            }
        }
        Ok(Flow::Normal)
    }

    fn range(
        &mut self,
        pipe: &Pipe,
        body: &[Node],
        otherwise: &[Node],
        dot: &Val,
    ) -> Result<(), TemplateError> {
        let mark = self.vars.len();
        // Evaluate without declaring: the declared variables are per-iteration.
        let decl = Pipe {
            line: pipe.line,
            vars: Vec::new(),
            assign: false,
            cmds: pipe.cmds.clone(),
        };
        let v = self.pipe(&decl, dot)?;
        let items: Vec<(Val, Val)> = match &v {
            Val::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, x)| (Val::Int(i as i64), x.clone()))
                .collect(),
            Val::Map(m) => m
                .iter()
                .map(|(k, x)| (Val::Str(k.clone()), x.clone()))
                .collect(),
            Val::Int(n) => {
                if *n > crate::types::MAX_RANGE_NUMBERS as i64 {
                    return Err(err(pipe.line, "range count is too large"));
                }
                (0..(*n).max(0))
                    .map(|i| (Val::Int(i), Val::Int(i)))
                    .collect()
            }
            Val::Missing | Val::Nil => Vec::new(),
            other => {
                return Err(err(
                    pipe.line,
                    format!("range can't iterate over {}", other.type_name()),
                ))
            }
        };
        if items.is_empty() {
            self.walk(otherwise, dot)?;
            self.vars.truncate(mark);
            return Ok(());
        }
        for (key, elem) in items {
            self.tick(pipe.line)?;
            self.charge(pipe.line, key.inline_bytes() + 2 * elem.inline_bytes())?;
            self.vars.truncate(mark);
            match pipe.vars.as_slice() {
                [v] => self.vars.push((v.clone(), elem.clone())),
                [k, v] => {
                    self.vars.push((k.clone(), key));
                    self.vars.push((v.clone(), elem.clone()));
                }
                _ => {}
            }
            if let Flow::Break = self.walk(body, &elem)? {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(())
    }

    fn pipe(&mut self, pipe: &Pipe, dot: &Val) -> Result<Val, TemplateError> {
        let mut prev: Option<Val> = None;
        for cmd in &pipe.cmds {
            prev = Some(self.cmd(cmd, dot, prev, pipe.line)?);
        }
        let v = prev.unwrap_or(Val::Missing);
        for name in &pipe.vars {
            self.charge(pipe.line, v.inline_bytes())?;
            if pipe.assign {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = v.clone();
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn cmd(
        &mut self,
        cmd: &Cmd,
        dot: &Val,
        piped: Option<Val>,
        line: usize,
    ) -> Result<Val, TemplateError> {
        self.tick(line)?;
        let (first, rest) = match cmd.args.split_first() {
            Some(x) => x,
            None => return Err(err(line, "empty command")),
        };
        let Arg::Func(name) = first else {
            if !rest.is_empty() || piped.is_some() {
                return Err(err(line, "can't give argument to non-function"));
            }
            return self.arg(first, dot, line);
        };
        // `and` / `or` short-circuit (Go 1.18+).
        if name == "and" || name == "or" {
            let mut last = Val::Bool(name == "and");
            let n = rest.len() + usize::from(piped.is_some());
            if n == 0 {
                return Err(err(
                    line,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            for a in rest {
                last = self.arg(a, dot, line)?;
                if last.truthy() != (name == "and") {
                    return Ok(last);
                }
            }
            if let Some(p) = piped {
                last = p;
            }
            return Ok(last);
        }
        let mut args = Vec::with_capacity(rest.len() + 1);
        for a in rest {
            args.push(match a {
                Arg::Nil => Val::Nil,
                a => self.arg(a, dot, line)?,
            });
        }
        if let Some(p) = piped {
            args.push(p);
        }
        let arg_bytes: u64 = args.iter().map(Val::inline_bytes).sum();
        self.charge(line, arg_bytes)?;
        let v = self
            .funcs
            .call(name, &args)
            .map_err(|e| err(line, format!("error calling {name}: {e}")))?;
        self.charge(line, v.inline_bytes())?;
        Ok(v)
    }

    fn arg(&mut self, arg: &Arg, dot: &Val, line: usize) -> Result<Val, TemplateError> {
        let (base, chain) = match arg {
            Arg::Field(chain) => (dot.clone(), chain.as_slice()),
            Arg::Var(name, chain) => {
                let v = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| err(line, format!("undefined variable \"${name}\"")))?;
                (v, chain.as_slice())
            }
            Arg::Func(name) => return self.funcs.call(name, &[]).map_err(|e| err(line, e)),
            Arg::Str(s) => {
                self.charge(line, s.len() as u64)?;
                return Ok(Val::Str(s.clone()));
            }
            Arg::Int(n) => return Ok(Val::Int(*n)),
            Arg::Bool(b) => return Ok(Val::Bool(*b)),
            Arg::Nil => return Err(err(line, "nil is not a command")),
            Arg::Sub(pipe, chain) => {
                let v = self.pipe(pipe, dot)?;
                (v, chain.as_slice())
            }
        };
        let mut v = base;
        for f in chain {
            v = v.field(f).map_err(|e| err(line, e))?;
        }
        // Reading a variable, `.` or a field copied the value.
        self.charge(line, v.inline_bytes())?;
        Ok(v)
    }
}
