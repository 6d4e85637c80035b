//! Executes a template parsed by the `gotmpl` crate with Go's text/template
//! semantics for Prometheus's typed data.
//!
//! gotmpl's own executor works on untyped values, so it cannot reproduce
//! what Prometheus users see: `$labels.missing` must read `""` (the zero
//! value of a `map[string]string` under `missingkey=zero`), `{{ $value }}`
//! must print `1e+06`, and errors must carry Go's
//! `template: NAME:LINE:COL: executing "NAME" at <NODE>: …` text. This module
//! walks gotmpl's public AST itself, mirroring Go's `text/template/exec.go`.

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::parse::{
    BranchNode, CommandNode, Expr, ListNode, Node, Number, PipeNode, TemplateNode,
};

use super::functions::{self, Builtin, Param};
use super::value::Value;

/// Nested `{{template}}` calls allowed before execution stops (Go allows
/// 100000, far more than a thread stack here holds).
const MAX_TEMPLATE_DEPTH: usize = 100;
/// Nested blocks and template calls together (the parser allows 100 nested
/// blocks per template): keeps the walk within a 2 MiB thread stack.
const MAX_NESTING: usize = 300;

/// A parsed template ready to execute: the main tree plus `{{define}}`s.
pub struct Parsed {
    pub name: String,
    pub source: String,
    pub tree: ListNode,
    pub defines: BTreeMap<String, Arc<ListNode>>,
}

/// Why a walk stopped early: an error, or `{{break}}`/`{{continue}}`.
enum Flow {
    Err(String),
    Break,
    Continue,
}

type R<T> = Result<T, Flow>;

/// The node an error is reported at (Go's `state.at`).
#[derive(Clone, Copy)]
enum At<'a> {
    Nothing,
    Pipe(&'a PipeNode),
    Cmd(&'a CommandNode),
    Expr(&'a Expr),
    Template(&'a TemplateNode),
    Range(&'a BranchNode),
}

pub struct State<'a> {
    parsed: &'a Parsed,
    /// Name of the template being executed (changes inside `{{template}}`).
    tmpl_name: String,
    vars: Vec<(String, Value)>,
    at: At<'a>,
    depth: usize,
    /// Lists being walked (blocks and template calls).
    nesting: usize,
    ctx: &'a functions::Context<'a>,
    out: String,
}

/// Executes `parsed` with `data` as dot; Err carries Go's error text.
pub fn execute(
    parsed: &Parsed,
    data: Value,
    ctx: &functions::Context<'_>,
) -> Result<String, String> {
    let mut state = State {
        parsed,
        tmpl_name: parsed.name.clone(),
        vars: vec![("$".to_string(), data.clone())],
        at: At::Nothing,
        depth: 0,
        nesting: 0,
        ctx,
        out: String::new(),
    };
    match state.walk(&data, &parsed.tree) {
        Ok(()) => Ok(state.out),
        Err(Flow::Err(e)) => Err(e),
        // The parser refuses break/continue outside range; be safe anyway.
        Err(Flow::Break | Flow::Continue) => Ok(state.out),
    }
}

impl<'a> State<'a> {
    fn errorf(&self, msg: impl Into<String>) -> Flow {
        let msg = msg.into();
        let (offset, context) = match self.at {
            At::Nothing => return Flow::Err(format!("template: {}: {msg}", self.tmpl_name)),
            At::Pipe(p) => (p.pos.offset, pipe_string(self.src(), p)),
            At::Cmd(c) => (c.pos.offset, command_string(self.src(), c)),
            At::Expr(e) => (expr_offset(e), expr_string(self.src(), e)),
            // Go positions a {{template}} at its name.
            At::Template(t) => (
                self.src()
                    .get(t.pos.offset..)
                    .and_then(|rest| rest.find(['"', '`']))
                    .map_or(t.pos.offset, |i| t.pos.offset + i),
                template_string(self.src(), t),
            ),
            At::Range(r) => (
                r.pos.offset,
                format!("{{{{range {}}}}}", pipe_string(self.src(), &r.pipe)),
            ),
        };
        let src = self.src();
        let before = src.get(..offset).unwrap_or(src);
        let line = 1 + before.matches('\n').count();
        let col = match before.rfind('\n') {
            Some(nl) => offset - nl - 1,
            None => offset,
        };
        Flow::Err(format!(
            "template: {}:{line}:{col}: executing {} at <{context}>: {msg}",
            self.parsed.name,
            super::gofmt::go_quote(&self.tmpl_name)
        ))
    }

    fn src(&self) -> &'a str {
        &self.parsed.source
    }

    fn walk(&mut self, dot: &Value, list: &'a ListNode) -> R<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            self.nesting -= 1;
            return Err(self.errorf(format!(
                "exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})"
            )));
        }
        let mut result = Ok(());
        for node in &list.nodes {
            result = self.walk_node(dot, node);
            if result.is_err() {
                break;
            }
        }
        self.nesting -= 1;
        result
    }

    fn walk_node(&mut self, dot: &Value, node: &'a Node) -> R<()> {
        match node {
            Node::Text(t) => self.out.push_str(&t.text),
            Node::Action(a) => {
                let val = self.eval_pipeline(dot, &a.pipe)?;
                if a.pipe.decl.is_empty() {
                    let text = match val {
                        Value::Html(s) => {
                            self.out.push_str(&s);
                            return Ok(());
                        }
                        // html/template prints a missing value as nothing.
                        Value::Nil if self.ctx.escape_html => String::new(),
                        Value::Nil => "<no value>".to_string(),
                        Value::String(s) => s.to_string(),
                        other => other.go_display(),
                    };
                    if self.ctx.escape_html {
                        self.out.push_str(&functions::html_text_escape(&text));
                    } else {
                        self.out.push_str(&text);
                    }
                }
            }
            Node::If(b) | Node::With(b) => {
                let is_with = matches!(node, Node::With(_));
                let mark = self.vars.len();
                let val = self.eval_pipeline(dot, &b.pipe)?;
                let result = if val.truth() {
                    if is_with {
                        self.walk(&val, &b.body)
                    } else {
                        self.walk(dot, &b.body)
                    }
                } else if let Some(else_body) = &b.else_body {
                    self.walk(dot, else_body)
                } else {
                    Ok(())
                };
                self.vars.truncate(mark);
                result?;
            }
            Node::Range(r) => self.walk_range(dot, r)?,
            Node::Template(t) => self.walk_template(dot, t)?,
            Node::Define(_) => {}
            Node::List(l) => self.walk(dot, l)?,
            Node::Break(_) => return Err(Flow::Break),
            Node::Continue(_) => return Err(Flow::Continue),
        }
        Ok(())
    }

    fn walk_range(&mut self, dot: &Value, r: &'a BranchNode) -> R<()> {
        self.at = At::Range(r);
        let mark = self.vars.len();
        // Go evaluates the pipeline without binding loop variables to its value
        // first; it pushes them with the pipeline's value, then overwrites.
        let val = self.eval_pipeline_value(dot, &r.pipe)?;
        for name in &r.pipe.decl {
            if !r.pipe.is_assign {
                self.vars.push((name.to_string(), val.clone()));
            }
        }
        let items: Vec<(Value, Value)> = match &val {
            Value::QueryResult(v) => v
                .iter()
                .enumerate()
                .map(|(i, s)| (Value::Int(i as i64), Value::Sample(Arc::clone(s))))
                .collect(),
            Value::Labels(m) => m
                .iter()
                .map(|(k, v)| (Value::str(k), Value::str(v)))
                .collect(),
            Value::Args(m) => m.iter().map(|(k, v)| (Value::str(k), v.clone())).collect(),
            Value::Kv(m) => m
                .iter()
                .map(|(k, v)| (Value::str(k), Value::str(v)))
                .collect(),
            Value::Alerts(v) => v
                .iter()
                .enumerate()
                .map(|(i, a)| (Value::Int(i as i64), Value::AmAlert(Arc::clone(a))))
                .collect(),
            Value::Pairs(v) => v
                .iter()
                .enumerate()
                .map(|(i, p)| (Value::Int(i as i64), Value::Pair(Arc::new(p.clone()))))
                .collect(),
            Value::Strings(v) => v
                .iter()
                .enumerate()
                .map(|(i, s)| (Value::Int(i as i64), Value::str(s)))
                .collect(),
            Value::Nil => Vec::new(),
            other => {
                let shown = other.go_display();
                self.vars.truncate(mark);
                return Err(self.errorf(format!("range can't iterate over {shown}")));
            }
        };
        let inner_mark = self.vars.len();
        let mut ran = false;
        for (index, elem) in items {
            ran = true;
            let decl = &r.pipe.decl;
            if r.pipe.is_assign {
                if let Some(name) = decl.last() {
                    self.set_var(name, elem.clone());
                }
                if decl.len() > 1 {
                    self.set_var(&decl[0], index.clone());
                }
            } else {
                let n = self.vars.len();
                if !decl.is_empty() {
                    self.vars[n - 1].1 = elem.clone();
                }
                if decl.len() > 1 {
                    self.vars[n - 2].1 = index.clone();
                }
            }
            let result = self.walk(&elem, &r.body);
            self.vars.truncate(inner_mark);
            match result {
                Ok(()) | Err(Flow::Continue) => {}
                Err(Flow::Break) => break,
                Err(e) => {
                    self.vars.truncate(mark);
                    return Err(e);
                }
            }
        }
        let result = match (&r.else_body, ran) {
            (Some(else_body), false) => self.walk(dot, else_body),
            _ => Ok(()),
        };
        self.vars.truncate(mark);
        result
    }

    fn walk_template(&mut self, dot: &Value, t: &'a TemplateNode) -> R<()> {
        self.at = At::Template(t);
        let parsed: &'a Parsed = self.parsed;
        let Some(tree) = parsed.defines.get(t.name.as_str()) else {
            return Err(self.errorf(format!(
                "template {} not defined",
                super::gofmt::go_quote(&t.name)
            )));
        };
        if self.depth >= MAX_TEMPLATE_DEPTH {
            return Err(self.errorf(format!(
                "exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})"
            )));
        }
        let new_dot = match &t.pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Value::Nil,
        };
        let saved_vars =
            std::mem::replace(&mut self.vars, vec![("$".to_string(), new_dot.clone())]);
        let saved_name = std::mem::replace(&mut self.tmpl_name, t.name.to_string());
        self.depth += 1;
        // The tree lives in `parsed.defines` for as long as `self`; the Arc
        // clone only keeps the borrow checker's view simple.
        let tree: &'a ListNode = tree;
        let result = self.walk(&new_dot, tree);
        self.depth -= 1;
        self.vars = saved_vars;
        self.tmpl_name = saved_name;
        result
    }

    fn set_var(&mut self, name: &str, value: Value) {
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = value;
        }
    }

    fn var_value(&self, name: &str) -> R<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => Err(self.errorf(format!("undefined variable: {name}"))),
        }
    }

    fn eval_pipeline_value(&mut self, dot: &Value, pipe: &'a PipeNode) -> R<Value> {
        self.at = At::Pipe(pipe);
        let mut value: Option<Value> = None;
        for cmd in &pipe.commands {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        Ok(value.unwrap_or(Value::Nil))
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &'a PipeNode) -> R<Value> {
        let value = self.eval_pipeline_value(dot, pipe)?;
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, value.clone());
            } else {
                self.vars.push((name.to_string(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, cmd: &'a CommandNode, final_: &Option<Value>) -> R<()> {
        if cmd.args.len() > 1 || final_.is_some() {
            return Err(self.errorf(format!(
                "can't give argument to non-function {}",
                expr_string(self.src(), &cmd.args[0])
            )));
        }
        Ok(())
    }

    fn eval_command(
        &mut self,
        dot: &Value,
        cmd: &'a CommandNode,
        final_: Option<Value>,
    ) -> R<Value> {
        let first = &cmd.args[0];
        match first {
            Expr::Field(_, fields) => {
                self.at = At::Expr(first);
                return self.eval_field_chain(dot, dot.clone(), fields, Some(cmd), final_);
            }
            Expr::Chain(_, inner, fields) => {
                self.at = At::Expr(first);
                if matches!(**inner, Expr::Nil(_)) {
                    return Err(self.errorf(format!(
                        "indirection through explicit nil in {}",
                        expr_string(self.src(), first)
                    )));
                }
                // Go reports errors of the fields at the last node evaluated.
                let receiver = self.eval_arg(dot, Param::Untyped, inner)?;
                return self.eval_field_chain(dot, receiver, fields, Some(cmd), final_);
            }
            Expr::Identifier(_, name) => {
                return self.eval_function(dot, first, name, cmd, &cmd.args[1..], final_);
            }
            Expr::Pipe(_, pipe) => {
                self.not_a_function(cmd, &final_)?;
                return self.eval_pipeline(dot, pipe);
            }
            Expr::Variable(_, name, fields) => {
                self.at = At::Expr(first);
                let value = self.var_value(name)?;
                if fields.is_empty() {
                    self.not_a_function(cmd, &final_)?;
                    return Ok(value);
                }
                return self.eval_field_chain(dot, value, fields, Some(cmd), final_);
            }
            _ => {}
        }
        self.at = At::Expr(first);
        self.not_a_function(cmd, &final_)?;
        match first {
            Expr::Bool(_, b) => Ok(Value::Bool(*b)),
            Expr::Dot(_) => Ok(dot.clone()),
            Expr::Nil(_) => Err(self.errorf("nil is not a command")),
            Expr::Number(_, n) => self.ideal_constant(first, *n),
            Expr::String(_, s) => Ok(Value::String(Arc::clone(s))),
            _ => Err(self.errorf(format!(
                "can't evaluate command {}",
                super::gofmt::go_quote(&expr_string(self.src(), first))
            ))),
        }
    }

    fn ideal_constant(&self, node: &Expr, n: Number) -> R<Value> {
        let text = literal_text(self.src(), node.pos().offset);
        match n {
            Number::Float(f) => Ok(Value::Float(f)),
            Number::Int(i) => Ok(Value::Int(i)),
            Number::Uint(_) => Err(self.errorf(format!("{text} overflows int"))),
        }
    }

    /// Field chain `receiver.f1.f2…` (Go's evalFieldChain): arguments go to
    /// the last field only.
    fn eval_field_chain(
        &mut self,
        dot: &Value,
        receiver: Value,
        fields: &[gotmpl::parse::SmolStr],
        cmd: Option<&'a CommandNode>,
        final_: Option<Value>,
    ) -> R<Value> {
        let mut receiver = receiver;
        let n = fields.len();
        for (i, field) in fields.iter().enumerate() {
            let last = i + 1 == n;
            let has_args = last && (cmd.is_some_and(|c| c.args.len() > 1) || final_.is_some());
            receiver = self.eval_field(
                dot,
                field,
                receiver,
                has_args,
                if last { cmd } else { None },
                if last { final_.clone() } else { None },
            )?;
        }
        Ok(receiver)
    }

    fn eval_field(
        &mut self,
        dot: &Value,
        field: &str,
        receiver: Value,
        has_args: bool,
        cmd: Option<&'a CommandNode>,
        final_: Option<Value>,
    ) -> R<Value> {
        let type_name = receiver.type_name();
        if let Some(v) = struct_field(&receiver, field) {
            if has_args {
                return Err(self.errorf(format!(
                    "{field} has arguments but cannot be invoked as function"
                )));
            }
            return Ok(v);
        }
        match &receiver {
            Value::Nil => return Ok(Value::Nil),
            Value::Time(ms) => {
                if let Some(result) = functions::time_method(*ms, field) {
                    // Methods without parameters: any argument is an error.
                    let args = cmd.map_or(0, |c| c.args.len().saturating_sub(1))
                        + usize::from(final_.is_some());
                    if args != 0 {
                        return Err(self.errorf(format!(
                            "wrong number of args for {field}: want 0 got {args}"
                        )));
                    }
                    return Ok(result);
                }
            }
            Value::Alerts(list) if matches!(field, "Firing" | "Resolved") => {
                self.no_method_args(field, cmd, &final_)?;
                let want = if field == "Firing" {
                    "firing"
                } else {
                    "resolved"
                };
                return Ok(Value::Alerts(Arc::new(
                    list.iter()
                        .filter(|a| &*a.status == want)
                        .cloned()
                        .collect(),
                )));
            }
            Value::Pairs(list) if matches!(field, "Names" | "Values") => {
                self.no_method_args(field, cmd, &final_)?;
                let names = field == "Names";
                return Ok(Value::Strings(Arc::new(
                    list.iter()
                        .map(|(k, v)| if names { k.clone() } else { v.clone() })
                        .collect(),
                )));
            }
            Value::Kv(m) => {
                match field {
                    "SortedPairs" | "Names" | "Values" => {
                        self.no_method_args(field, cmd, &final_)?;
                        let pairs = sorted_pairs(m);
                        return Ok(match field {
                            "SortedPairs" => Value::Pairs(Arc::new(pairs)),
                            "Names" => {
                                Value::Strings(Arc::new(pairs.into_iter().map(|p| p.0).collect()))
                            }
                            _ => Value::Strings(Arc::new(pairs.into_iter().map(|p| p.1).collect())),
                        });
                    }
                    "Remove" => {
                        let mut args = Vec::new();
                        if let Some(c) = cmd {
                            for arg in &c.args[1..] {
                                args.push(self.eval_arg(dot, Param::StrSlice, arg)?);
                            }
                        }
                        if let Some(f) = final_ {
                            args.push(self.validate_type(f, Param::StrSlice)?);
                        }
                        if args.len() != 1 {
                            return Err(self.errorf(format!(
                                "wrong number of args for Remove: want 1 got {}",
                                args.len()
                            )));
                        }
                        let keys: Vec<String> = match &args[0] {
                            Value::Strings(v) => v.as_ref().clone(),
                            _ => Vec::new(),
                        };
                        let mut rest = m.as_ref().clone();
                        rest.retain(|k, _| !keys.contains(k));
                        return Ok(Value::Kv(Arc::new(rest)));
                    }
                    _ => {}
                }
                if has_args {
                    return Err(self.errorf(format!("{field} is not a method but has arguments")));
                }
                return Ok(Value::str(m.get(field).map_or("", String::as_str)));
            }
            Value::Labels(m) => {
                if has_args {
                    return Err(self.errorf(format!("{field} is not a method but has arguments")));
                }
                // missingkey=zero: the zero value of string.
                return Ok(Value::str(m.get(field).map_or("", String::as_str)));
            }
            Value::Args(m) => {
                if has_args {
                    return Err(self.errorf(format!("{field} is not a method but has arguments")));
                }
                return Ok(m.get(field).cloned().unwrap_or(Value::Nil));
            }
            _ => {}
        }
        Err(self.errorf(format!("can't evaluate field {field} in type {type_name}")))
    }

    /// Go's check that a method without parameters got no arguments.
    fn no_method_args(
        &self,
        field: &str,
        cmd: Option<&'a CommandNode>,
        final_: &Option<Value>,
    ) -> R<()> {
        let args =
            cmd.map_or(0, |c| c.args.len().saturating_sub(1)) + usize::from(final_.is_some());
        if args != 0 {
            return Err(self.errorf(format!(
                "wrong number of args for {field}: want 0 got {args}"
            )));
        }
        Ok(())
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        ident: &'a Expr,
        name: &str,
        cmd: &'a CommandNode,
        args: &'a [Expr],
        final_: Option<Value>,
    ) -> R<Value> {
        self.at = At::Expr(ident);
        let Some(sig) = functions::signature(name, self.ctx.dialect) else {
            return Err(self.errorf(format!(
                "{} is not a defined function",
                super::gofmt::go_quote(name)
            )));
        };
        let num_in = args.len() + usize::from(final_.is_some());
        let fixed = sig.params.len();
        if sig.variadic.is_some() {
            if num_in < fixed {
                return Err(self.errorf(format!(
                    "wrong number of args for {name}: want at least {fixed} got {}",
                    args.len()
                )));
            }
        } else if num_in != fixed {
            return Err(self.errorf(format!(
                "wrong number of args for {name}: want {fixed} got {num_in}"
            )));
        }
        let param_at = |i: usize| -> Param {
            if i < fixed {
                sig.params[i]
            } else {
                sig.variadic.unwrap_or(Param::Any)
            }
        };

        // and/or short-circuit, returning the deciding operand.
        if matches!(sig.builtin, Some(Builtin::And | Builtin::Or)) {
            let is_or = matches!(sig.builtin, Some(Builtin::Or));
            let mut v = Value::Nil;
            for arg in args {
                v = self.eval_arg(dot, Param::Reflect, arg)?;
                if v.truth() == is_or {
                    return Ok(v);
                }
            }
            if let Some(f) = final_ {
                v = self.validate_type(f, Param::Reflect)?;
            }
            return Ok(v);
        }

        let mut argv = Vec::with_capacity(num_in);
        for (i, arg) in args.iter().enumerate() {
            argv.push(self.eval_arg(dot, param_at(i), arg)?);
        }
        if let Some(f) = final_ {
            argv.push(self.validate_type(f, param_at(num_in - 1))?);
        }
        match functions::call(name, &argv, self.ctx) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.at = At::Cmd(cmd);
                Err(self.errorf(format!("error calling {name}: {e}")))
            }
        }
    }

    /// Go's validateType for a value computed at run time.
    fn validate_type(&self, value: Value, param: Param) -> R<Value> {
        if value == Value::Nil {
            return match param {
                Param::Untyped
                | Param::Any
                | Param::Sample
                | Param::QueryResult
                | Param::StrSlice => Ok(Value::Nil),
                Param::Reflect => Err(self.errorf("invalid value; expected reflect.Value")),
                Param::Str => Err(self.errorf("invalid value; expected string")),
            };
        }
        let ok = match param {
            Param::Untyped | Param::Any | Param::Reflect => true,
            Param::Str => matches!(value, Value::String(_)),
            Param::Sample => matches!(value, Value::Sample(_)),
            Param::QueryResult => matches!(value, Value::QueryResult(_)),
            Param::StrSlice => matches!(value, Value::Strings(_)),
        };
        if ok {
            Ok(value)
        } else {
            Err(self.errorf(format!(
                "wrong type for value; expected {}; got {}",
                param.go_type(),
                value.type_name()
            )))
        }
    }

    fn eval_arg(&mut self, dot: &Value, param: Param, node: &'a Expr) -> R<Value> {
        self.at = At::Expr(node);
        let value = match node {
            Expr::Dot(_) => dot.clone(),
            Expr::Nil(_) => {
                return match param {
                    Param::Any
                    | Param::Sample
                    | Param::QueryResult
                    | Param::Untyped
                    | Param::StrSlice => Ok(Value::Nil),
                    Param::Str | Param::Reflect => {
                        Err(self.errorf(format!("cannot assign nil to {}", param.go_type())))
                    }
                };
            }
            Expr::Field(_, fields) => {
                self.eval_field_chain(dot, dot.clone(), fields, None, None)?
            }
            Expr::Variable(_, name, fields) => {
                let v = self.var_value(name)?;
                if fields.is_empty() {
                    v
                } else {
                    self.eval_field_chain(dot, v, fields, None, None)?
                }
            }
            Expr::Pipe(_, pipe) => self.eval_pipeline(dot, pipe)?,
            Expr::Identifier(_, name) => self.eval_function_bare(node, name)?,
            Expr::Chain(_, inner, fields) => {
                if matches!(**inner, Expr::Nil(_)) {
                    return Err(self.errorf(format!(
                        "indirection through explicit nil in {}",
                        expr_string(self.src(), node)
                    )));
                }
                let receiver = self.eval_arg(dot, Param::Untyped, inner)?;
                self.eval_field_chain(dot, receiver, fields, None, None)?
            }
            Expr::String(_, s) => {
                return match param {
                    Param::Str | Param::Any | Param::Reflect | Param::Untyped => {
                        Ok(Value::String(Arc::clone(s)))
                    }
                    _ => Err(self.errorf(format!(
                        "can't handle {} for arg of type {}",
                        expr_string(self.src(), node),
                        param.go_type()
                    ))),
                };
            }
            Expr::Bool(_, b) => {
                return match param {
                    Param::Any | Param::Reflect | Param::Untyped => Ok(Value::Bool(*b)),
                    Param::Str => Err(self.errorf(format!(
                        "expected string; found {}",
                        expr_string(self.src(), node)
                    ))),
                    _ => Err(self.errorf(format!(
                        "can't handle {} for arg of type {}",
                        expr_string(self.src(), node),
                        param.go_type()
                    ))),
                };
            }
            Expr::Number(_, n) => {
                return match param {
                    Param::Any | Param::Reflect | Param::Untyped => self.ideal_constant(node, *n),
                    Param::Str => Err(self.errorf(format!(
                        "expected string; found {}",
                        expr_string(self.src(), node)
                    ))),
                    _ => Err(self.errorf(format!(
                        "can't handle {} for arg of type {}",
                        expr_string(self.src(), node),
                        param.go_type()
                    ))),
                };
            }
        };
        // Like Go, a type error is reported at the last node evaluated.
        self.validate_type(value, param)
    }

    /// A function named as an argument (`{{ humanize value }}` style use of a
    /// bare identifier): called with no arguments.
    fn eval_function_bare(&mut self, ident: &'a Expr, name: &str) -> R<Value> {
        self.at = At::Expr(ident);
        let Some(sig) = functions::signature(name, self.ctx.dialect) else {
            return Err(self.errorf(format!(
                "{} is not a defined function",
                super::gofmt::go_quote(name)
            )));
        };
        let fixed = sig.params.len();
        if sig.variadic.is_none() && fixed != 0 {
            return Err(self.errorf(format!(
                "wrong number of args for {name}: want {fixed} got 0"
            )));
        }
        if sig.variadic.is_some() && fixed > 0 {
            return Err(self.errorf(format!(
                "wrong number of args for {name}: want at least {fixed} got 0"
            )));
        }
        match functions::call(name, &[], self.ctx) {
            Ok(v) => Ok(v),
            Err(e) => Err(self.errorf(format!("error calling {name}: {e}"))),
        }
    }
}

/// Alertmanager's `KV.SortedPairs`: `alertname` first, then by name.
/// The plain fields of the template data types (`.Labels`, `.Status`, …);
/// `None` when `field` is not one of `receiver`'s.
fn struct_field(receiver: &Value, field: &str) -> Option<Value> {
    match receiver {
        Value::Data(d) => match field {
            "Labels" => Some(Value::Labels(Arc::clone(&d.labels))),
            "ExternalLabels" => Some(Value::Labels(Arc::clone(&d.external_labels))),
            "ExternalURL" => Some(Value::String(Arc::clone(&d.external_url))),
            "Value" => Some(Value::Float(d.value)),
            _ => None,
        },
        Value::Sample(s) => match field {
            "Labels" => Some(Value::Labels(Arc::clone(&s.labels))),
            "Value" => Some(Value::Float(s.value)),
            _ => None,
        },
        Value::AmData(d) => match field {
            "Receiver" => Some(Value::String(Arc::clone(&d.receiver))),
            "Status" => Some(Value::String(Arc::clone(&d.status))),
            "Alerts" => Some(Value::Alerts(Arc::clone(&d.alerts))),
            "GroupLabels" => Some(Value::Kv(Arc::clone(&d.group_labels))),
            "CommonLabels" => Some(Value::Kv(Arc::clone(&d.common_labels))),
            "CommonAnnotations" => Some(Value::Kv(Arc::clone(&d.common_annotations))),
            "ExternalURL" => Some(Value::String(Arc::clone(&d.external_url))),
            _ => None,
        },
        Value::AmAlert(a) => match field {
            "Status" => Some(Value::String(Arc::clone(&a.status))),
            "Labels" => Some(Value::Kv(Arc::clone(&a.labels))),
            "Annotations" => Some(Value::Kv(Arc::clone(&a.annotations))),
            "StartsAt" => Some(Value::Time(a.starts_at)),
            "EndsAt" => Some(Value::Time(a.ends_at)),
            "GeneratorURL" => Some(Value::String(Arc::clone(&a.generator_url))),
            "Fingerprint" => Some(Value::String(Arc::clone(&a.fingerprint))),
            _ => None,
        },
        Value::Pair(p) => match field {
            "Name" => Some(Value::str(&p.0)),
            "Value" => Some(Value::str(&p.1)),
            _ => None,
        },
        _ => None,
    }
}

fn sorted_pairs(m: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(m.len());
    if let Some(v) = m.get("alertname") {
        pairs.push(("alertname".into(), v.clone()));
    }
    pairs.extend(
        m.iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    pairs
}

// ---- Go's node String() forms, for error contexts ----

/// Go's position of an expression node: a field chain (`$x.a.b`, `.A.b`)
/// is positioned at its first chained field, not at its start.
fn expr_offset(e: &Expr) -> usize {
    match e {
        Expr::Variable(p, name, fields) if !fields.is_empty() => p.offset + name.len(),
        Expr::Field(p, fields) if fields.len() > 1 => p.offset + fields[0].len() + 1,
        other => other.pos().offset,
    }
}

/// The literal as written in the source (numbers and strings keep their
/// spelling in Go's error contexts: `1.0`, `` `raw` ``).
fn literal_text(src: &str, offset: usize) -> &str {
    let rest = src.get(offset..).unwrap_or("");
    let bytes = rest.as_bytes();
    match bytes.first() {
        Some(b'"') => {
            let mut i = 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => i += 2,
                    b'"' => return &rest[..=i],
                    _ => i += 1,
                }
            }
            rest
        }
        Some(b'`') => match rest[1..].find('`') {
            Some(end) => &rest[..end + 2],
            None => rest,
        },
        Some(b'\'') => {
            let mut i = 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => i += 2,
                    b'\'' => return &rest[..=i],
                    _ => i += 1,
                }
            }
            rest
        }
        _ => {
            let mut end = 0;
            let mut prev = 0u8;
            for (i, &b) in bytes.iter().enumerate() {
                let ok = b.is_ascii_alphanumeric()
                    || b == b'_'
                    || b == b'.'
                    || ((b == b'+' || b == b'-')
                        && (i == 0 || matches!(prev, b'e' | b'E' | b'p' | b'P')));
                if !ok {
                    break;
                }
                prev = b;
                end = i + 1;
            }
            &rest[..end]
        }
    }
}

pub fn expr_string(src: &str, e: &Expr) -> String {
    match e {
        Expr::Dot(_) => ".".to_string(),
        Expr::Field(_, fields) => fields.iter().map(|f| format!(".{f}")).collect(),
        Expr::Variable(_, name, fields) => {
            let mut s = name.to_string();
            for f in fields {
                s.push('.');
                s.push_str(f);
            }
            s
        }
        Expr::Identifier(_, name) => name.to_string(),
        Expr::String(p, _) | Expr::Number(p, _) => literal_text(src, p.offset).to_string(),
        Expr::Bool(_, b) => b.to_string(),
        Expr::Nil(_) => "nil".to_string(),
        Expr::Pipe(_, p) => format!("({})", pipe_string(src, p)),
        Expr::Chain(_, inner, fields) => {
            let mut s = match &**inner {
                Expr::Pipe(_, p) => format!("({})", pipe_string(src, p)),
                other => expr_string(src, other),
            };
            for f in fields {
                s.push('.');
                s.push_str(f);
            }
            s
        }
    }
}

pub fn command_string(src: &str, c: &CommandNode) -> String {
    c.args
        .iter()
        .map(|a| expr_string(src, a))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn pipe_string(src: &str, p: &PipeNode) -> String {
    let mut s = String::new();
    if !p.decl.is_empty() {
        s.push_str(
            &p.decl
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        );
        s.push_str(if p.is_assign { " = " } else { " := " });
    }
    s.push_str(
        &p.commands
            .iter()
            .map(|c| command_string(src, c))
            .collect::<Vec<_>>()
            .join(" | "),
    );
    s
}

fn template_string(src: &str, t: &TemplateNode) -> String {
    match &t.pipe {
        Some(p) => format!(
            "{{{{template {} {}}}}}",
            super::gofmt::go_quote(&t.name),
            pipe_string(src, p)
        ),
        None => format!("{{{{template {}}}}}", super::gofmt::go_quote(&t.name)),
    }
}
