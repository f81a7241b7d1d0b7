//! frp's template pass: a Go `text/template` subset written for this crate
//! (frp `pkg/config/load.go` `RenderWithTemplate`, `pkg/config/template.go`).
//!
//! frp renders every config file as a Go template before parsing it, with data
//! `{ Envs: map[string]string }` and two extra functions. We wrote our own renderer instead of
//! using a crate: the Rust Go-template crates (`gtmpl` and friends) are unmaintained or miss
//! pieces frp configs use (`{{-`/`-}}` trimming, `range $i, $v :=`, Go's `<no value>`
//! printing), and a small, bounded evaluator is easy to make panic-free on hostile input.
//!
//! Supported: text and `{{ pipeline }}` actions; `{{-` / `-}}` trimming; `{{/* comments */}}`;
//! `.`, `.Field.Chain` (map keys on `.Envs`, struct fields such as `.First`/`.Second`);
//! variables `$`, `$x := ...`, `$x = ...`, `$x.Field`; `if` / `else if` / `else`, `with`,
//! `range` (over lists, maps and integers, with `$v :=` or `$i, $v :=`, `else`, `break`,
//! `continue`); pipelines `a | f b`; parentheses; string, raw-string, char, integer and
//! boolean literals; the builtins `eq ne lt le gt ge and or not len index print printf
//! println`; and frp's `parseNumberRange` and `parseNumberRangePair`.
//! Not supported (reported as errors): `define`/`template`/`block`, floats, methods.
//!
//! A missing `.Envs.NAME` prints `<no value>`, as in Go.

mod exec;
mod lex;
mod parse;

use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use exec::{Exec, Val};

use crate::types;

/// Template data: the environment, visible as `.Envs.NAME`.
pub type Env = BTreeMap<String, String>;

/// A template failure: 1-based line and Go-style reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// Line of the failing action.
    pub line: usize,
    /// What went wrong.
    pub reason: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for TemplateError {}

/// Renders a v1 config file (TOML/YAML/JSON): builtins plus `parseNumberRange` and
/// `parseNumberRangePair`.
pub fn render(text: &str, env: &Env) -> Result<String, TemplateError> {
    render_with(text, env, &Functions { frp: true })
}

/// Renders a legacy INI file: frp's legacy loader (`pkg/config/legacy/value.go`) registers no
/// extra functions.
pub fn render_legacy(text: &str, env: &Env) -> Result<String, TemplateError> {
    render_with(text, env, &Functions { frp: false })
}

fn render_with(text: &str, env: &Env, funcs: &Functions) -> Result<String, TemplateError> {
    // Fast path: no action at all.
    if !text.contains("{{") {
        return Ok(text.to_string());
    }
    let toks = lex::lex(text)?;
    let nodes = parse::Parser::new(toks, funcs).parse()?;
    let envs: BTreeMap<String, Val> = env
        .iter()
        .map(|(k, v)| (k.clone(), Val::Str(v.clone())))
        .collect();
    let root = Val::Struct(
        "*config.Values",
        Rc::new(vec![("Envs", Val::Map(Rc::new(envs)))]),
    );
    Exec::new(funcs, root).run(&nodes)
}

/// The function table.
pub(crate) struct Functions {
    frp: bool,
}

const BUILTINS: &[&str] = &[
    "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "len", "index", "print", "printf",
    "println",
];

impl Functions {
    fn has(&self, name: &str) -> bool {
        BUILTINS.contains(&name)
            || (self.frp && matches!(name, "parseNumberRange" | "parseNumberRangePair"))
    }

    fn call(&self, name: &str, args: &[Val]) -> Result<Val, String> {
        let arity = |want: usize| {
            if args.len() == want {
                Ok(())
            } else {
                Err(format!(
                    "wrong number of args for {name}: want {want} got {}",
                    args.len()
                ))
            }
        };
        match name {
            "parseNumberRange" => {
                arity(1)?;
                let nums = types::parse_number_range(str_arg(&args[0])?).map_err(|e| e.0)?;
                Ok(Val::List(Rc::new(nums.into_iter().map(Val::Int).collect())))
            }
            "parseNumberRangePair" => {
                arity(2)?;
                let a = types::parse_number_range(str_arg(&args[0])?).map_err(|e| e.0)?;
                let b = types::parse_number_range(str_arg(&args[1])?).map_err(|e| e.0)?;
                if a.len() != b.len() {
                    return Err("first and second range numbers are not in pairs".into());
                }
                let pairs = a
                    .into_iter()
                    .zip(b)
                    .map(|(x, y)| {
                        Val::Struct(
                            "config.NumberPair",
                            Rc::new(vec![("First", Val::Int(x)), ("Second", Val::Int(y))]),
                        )
                    })
                    .collect();
                Ok(Val::List(Rc::new(pairs)))
            }
            "not" => {
                arity(1)?;
                Ok(Val::Bool(!args[0].truthy()))
            }
            "len" => {
                arity(1)?;
                match &args[0] {
                    Val::Str(s) => Ok(Val::Int(s.len() as i64)),
                    Val::List(l) => Ok(Val::Int(l.len() as i64)),
                    Val::Map(m) => Ok(Val::Int(m.len() as i64)),
                    other => Err(format!("len of type {}", other.type_name())),
                }
            }
            "index" => index(args),
            "eq" => {
                if args.len() < 2 {
                    return Err("missing argument for comparison".into());
                }
                for b in &args[1..] {
                    if compare(&args[0], b)? == std::cmp::Ordering::Equal {
                        return Ok(Val::Bool(true));
                    }
                }
                Ok(Val::Bool(false))
            }
            "ne" | "lt" | "le" | "gt" | "ge" => {
                arity(2)?;
                if name != "ne" && !matches!(args[0], Val::Int(_) | Val::Str(_)) {
                    return Err("invalid type for comparison".into());
                }
                let o = compare(&args[0], &args[1])?;
                use std::cmp::Ordering::*;
                Ok(Val::Bool(match name {
                    "ne" => o != Equal,
                    "lt" => o == Less,
                    "le" => o != Greater,
                    "gt" => o == Greater,
                    _ => o != Less,
                }))
            }
            "print" => Ok(Val::Str(sprint(args, false))),
            "println" => Ok(Val::Str(sprint(args, true))),
            "printf" => {
                let (fmt, rest) = args
                    .split_first()
                    .ok_or("wrong number of args for printf")?;
                Ok(Val::Str(sprintf(str_arg(fmt)?, rest)))
            }
            other => Err(format!("function \"{other}\" not defined")),
        }
    }
}

fn str_arg(v: &Val) -> Result<&str, String> {
    match v {
        Val::Str(s) => Ok(s),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

fn compare(a: &Val, b: &Val) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => Ok(x.cmp(y)),
        (Val::Str(x), Val::Str(y)) => Ok(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => Ok(x.cmp(y)),
        (Val::Missing | Val::Nil, Val::Missing | Val::Nil) => Ok(std::cmp::Ordering::Equal),
        _ => Err("incompatible types for comparison".into()),
    }
}

fn index(args: &[Val]) -> Result<Val, String> {
    let (first, keys) = args.split_first().ok_or("wrong number of args for index")?;
    let mut v = first.clone();
    for k in keys {
        v = match (&v, k) {
            (Val::List(l), Val::Int(i)) => usize::try_from(*i)
                .ok()
                .and_then(|i| l.get(i).cloned())
                .ok_or_else(|| format!("index out of range: {i}"))?,
            // Go returns the element type's zero value for a missing key.
            (Val::Map(m), Val::Str(s)) => m.get(s).cloned().unwrap_or(Val::Str(String::new())),
            (Val::Missing | Val::Nil, _) => return Err("index of untyped nil".into()),
            (c, k) => {
                return Err(format!(
                    "can't index item of type {} with {}",
                    c.type_name(),
                    k.type_name()
                ))
            }
        };
    }
    Ok(v)
}

/// Go `fmt.Sprint` (spaces only between non-string operands) or `fmt.Sprintln`.
fn sprint(args: &[Val], ln: bool) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && (ln || !(matches!(a, Val::Str(_)) || matches!(args[i - 1], Val::Str(_)))) {
            out.push(' ');
        }
        a.print(&mut out);
    }
    if ln {
        out.push('\n');
    }
    out
}

/// A `fmt.Sprintf` subset: `%v %s %d %t %q %%`.
fn sprintf(fmt: &str, args: &[Val]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(verb) => match args.next() {
                Some(a) => match (verb, a) {
                    ('q', Val::Str(s)) => out.push_str(&format!("{s:?}")),
                    ('d', Val::Int(_)) | ('v' | 's' | 't', _) => a.print(&mut out),
                    (v, a) => {
                        out.push_str(&format!("%!{v}({}=", a.type_name()));
                        a.print(&mut out);
                        out.push(')');
                    }
                },
                None => out.push_str(&format!("%!{verb}(MISSING)")),
            },
            None => out.push_str("%!(NOVERB)"),
        }
    }
    out
}

#[cfg(test)]
mod tests;
