//! Parsing with Go's verdicts: gotmpl's parser, plus the checks Go's
//! text/template parser makes that gotmpl does not (function and variable
//! names exist; every `{{if}}`/`{{range}}`/`{{with}}`/`{{define}}`/`{{block}}`
//! has its `{{end}}`; no stray `{{end}}`/`{{else}}`; `{{break}}` and
//! `{{continue}}` only inside `{{range}}`). Errors read as Go's:
//! `template: NAME:LINE: message`.

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::parse::{Expr, ListNode, Node, Parser, PipeNode};
use gotmpl::TemplateError;

use super::exec::Parsed;
use super::functions::{self, Dialect};

/// A parse error at a byte offset (to report the first one in the source).
struct Found {
    offset: usize,
    line: usize,
    message: String,
}

pub fn parse(name: &str, text: &str, dialect: Dialect) -> Result<Parsed, String> {
    let structural = scan_blocks(text);
    let parsed = Parser::with_name(Some(name), text, "{{", "}}").and_then(|p| p.parse());
    let (tree, defines) = match parsed {
        Ok(t) => t,
        Err(e) => {
            let found = from_gotmpl(text, &e);
            let first = match structural {
                Some(s) if s.offset <= found.offset => s,
                _ => found,
            };
            return Err(format!(
                "template: {name}:{}: {}",
                first.line, first.message
            ));
        }
    };
    let mut errors: Vec<Found> = structural.into_iter().collect();
    let mut vars = vec!["$".to_string()];
    check_list(&tree, &mut vars, &mut errors, dialect);
    for define in &defines {
        let mut vars = vec!["$".to_string()];
        check_list(&define.body, &mut vars, &mut errors, dialect);
    }
    if let Some(first) = errors.into_iter().min_by_key(|f| f.offset) {
        return Err(format!(
            "template: {name}:{}: {}",
            first.line, first.message
        ));
    }
    let mut define_map = BTreeMap::new();
    for define in defines {
        define_map.insert(define.name.to_string(), Arc::new(define.body));
    }
    Ok(Parsed {
        name: name.to_string(),
        source: text.to_string(),
        tree,
        defines: define_map,
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    1 + text.get(..offset).unwrap_or(text).matches('\n').count()
}

/// gotmpl's error, with Go's wording where gotmpl's differs.
fn from_gotmpl(text: &str, e: &TemplateError) -> Found {
    let (line, col, message) = match e {
        TemplateError::Parse {
            line, col, message, ..
        }
        | TemplateError::Lex {
            line, col, message, ..
        } => (*line, *col, message.clone()),
        other => (1, 1, other.to_string()),
    };
    // Offset of (line, col) for ordering against our own findings.
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            offset += l
                .char_indices()
                .nth(col.saturating_sub(1))
                .map_or(l.len(), |(b, _)| b);
            break;
        }
        offset += l.len();
    }
    Found {
        offset,
        line,
        message,
    }
}

fn check_list(list: &ListNode, vars: &mut Vec<String>, errors: &mut Vec<Found>, dialect: Dialect) {
    for node in &list.nodes {
        match node {
            Node::Action(a) => check_pipe(&a.pipe, vars, errors, dialect),
            Node::If(b) | Node::With(b) | Node::Range(b) => {
                let mark = vars.len();
                check_pipe(&b.pipe, vars, errors, dialect);
                check_list(&b.body, vars, errors, dialect);
                if let Some(e) = &b.else_body {
                    check_list(e, vars, errors, dialect);
                }
                vars.truncate(mark);
            }
            Node::Template(t) => {
                if let Some(p) = &t.pipe {
                    check_pipe(p, vars, errors, dialect);
                }
            }
            Node::List(l) => check_list(l, vars, errors, dialect),
            Node::Text(_) | Node::Define(_) | Node::Break(_) | Node::Continue(_) => {}
        }
    }
}

fn check_pipe(pipe: &PipeNode, vars: &mut Vec<String>, errors: &mut Vec<Found>, dialect: Dialect) {
    for decl in &pipe.decl {
        vars.push(decl.to_string());
    }
    for cmd in &pipe.commands {
        for arg in &cmd.args {
            check_expr(arg, vars, errors, dialect);
        }
    }
}

fn check_expr(expr: &Expr, vars: &mut Vec<String>, errors: &mut Vec<Found>, dialect: Dialect) {
    match expr {
        Expr::Identifier(pos, name) if !functions::is_defined(name, dialect) => {
            errors.push(Found {
                offset: pos.offset,
                line: pos.line,
                message: format!("function {} not defined", super::gofmt::go_quote(name)),
            })
        }
        Expr::Variable(pos, name, _) if !vars.iter().any(|v| v == name.as_str()) => {
            errors.push(Found {
                offset: pos.offset,
                line: pos.line,
                message: format!("undefined variable {}", super::gofmt::go_quote(name)),
            })
        }
        Expr::Pipe(_, p) => {
            // A parenthesised pipeline's declarations stay in scope (Go's
            // parser appends them to the same variable list).
            check_pipe(p, vars, errors, dialect);
        }
        Expr::Chain(_, inner, _) => check_expr(inner, vars, errors, dialect),
        _ => {}
    }
}

/// Scans the actions' first words for block structure, which gotmpl's
/// parser does not enforce (it accepts `{{if x}}` without `{{end}}`).
fn scan_blocks(text: &str) -> Option<Found> {
    #[derive(PartialEq)]
    enum Block {
        Range,
        Other,
    }
    let mut stack: Vec<Block> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(start) = text[i..].find("{{").map(|p| p + i) {
        let mut j = start + 2;
        if bytes.get(j) == Some(&b'-') && bytes.get(j + 1).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        // Comments: {{/* ... */}}
        while bytes.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        if text[j..].starts_with("/*") {
            match text[j..].find("*/") {
                Some(end) => {
                    i = j + end + 2;
                    continue;
                }
                None => return None, // gotmpl reports the unclosed comment
            }
        }
        let word_end = text[j..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |p| p + j);
        let word = &text[j..word_end];
        let here = |message: &str| Found {
            offset: start,
            line: line_of(text, start),
            message: message.to_string(),
        };
        match word {
            "if" | "with" | "define" | "block" => stack.push(Block::Other),
            "range" => stack.push(Block::Range),
            "end" if stack.pop().is_none() => return Some(here("unexpected {{end}}")),
            "else" if stack.is_empty() => return Some(here("unexpected {{else}}")),
            "break" | "continue" if !stack.contains(&Block::Range) => {
                return Some(here(&format!("{{{{{word}}}}} outside {{{{range}}}}")));
            }
            _ => {}
        }
        // Skip to the end of this action, stepping over quoted strings.
        let mut k = word_end;
        let mut closed = false;
        while k < bytes.len() {
            match bytes[k] {
                b'"' | b'\'' => {
                    let quote = bytes[k];
                    k += 1;
                    while k < bytes.len() && bytes[k] != quote && bytes[k] != b'\n' {
                        if bytes[k] == b'\\' {
                            k += 1;
                        }
                        k += 1;
                    }
                    k += 1;
                }
                b'`' => {
                    k += 1;
                    while k < bytes.len() && bytes[k] != b'`' {
                        k += 1;
                    }
                    k += 1;
                }
                b'}' if bytes.get(k + 1) == Some(&b'}') => {
                    closed = true;
                    k += 2;
                    break;
                }
                _ => k += 1,
            }
        }
        if !closed {
            return None; // unclosed action: gotmpl reports it
        }
        i = k;
    }
    if stack.is_empty() {
        None
    } else {
        Some(Found {
            offset: text.len(),
            line: line_of(text, text.len()),
            message: "unexpected EOF".to_string(),
        })
    }
}
