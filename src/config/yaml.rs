//! The YAML document as a tree of nodes that remember where they were written.
//!
//! This module owns turning config text into a [`Node`] tree: every node carries
//! its 1-based `line:col`, its key path as users write it
//! (`scrape_configs[2].relabel_configs[0].regex`) and an id, so that the typed
//! deserializer ([`super::de`]) and the semantic checks ([`super::validate`]) can
//! both say where a problem is. It also expands `${VAR}` in scalar values.
//! It knows nothing about bellwether's config keys (beyond the two relabel keys
//! whose `${1}` templates are not expanded).
//!
//! The events come from `granit-parser`, the YAML parser under serde-saphyr
//! (re-exported by it, so no extra dependency): serde-saphyr itself stops at the
//! first error, and we want all of them.

use std::collections::HashMap;
use std::fmt;

use serde_saphyr::granit_parser::{Event, Marker, Parser, ScalarStyle};

/// A 1-based position in the config text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    fn from_marker(m: &Marker) -> Pos {
        // granit's columns are 0-based, lines 1-based.
        Pos {
            line: m.line().max(1),
            col: m.col() + 1,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One problem found in the config, before it is rendered with the file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Finding {
    pub pos: Option<Pos>,
    /// Key path, empty for problems of the whole document (e.g. a syntax error).
    pub path: String,
    pub message: String,
}

impl Finding {
    pub fn render(&self, origin: &str) -> String {
        let mut out = String::from(origin);
        if let Some(pos) = self.pos {
            out.push_str(&format!(":{pos}"));
        }
        out.push_str(": ");
        if !self.path.is_empty() {
            out.push_str(&self.path);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        // One finding per line, whatever the user's keys and values contain.
        out.replace('\n', "\\n").replace('\r', "\\r")
    }
}

pub(crate) type NodeId = u32;

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub id: NodeId,
    pub pos: Pos,
    /// Key path of this node as written by the user; unaffected by later removals.
    pub path: String,
    pub kind: Kind,
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    /// `~`, `null`, or nothing at all (`key:`).
    Null,
    /// `plain` scalars take their type from their text (`15` is a number,
    /// `true` a boolean); quoted and block scalars are always strings.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub key: String,
    pub key_id: NodeId,
    pub key_pos: Pos,
    pub value: Node,
}

impl Node {
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            Kind::Null => "null",
            Kind::Scalar { .. } => "a scalar",
            Kind::Seq(_) => "a sequence",
            Kind::Map(_) => "a mapping",
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    /// Number of nodes in this subtree, itself and mapping keys included (the
    /// ids an alias to it uses up).
    fn count(&self) -> u32 {
        match &self.kind {
            Kind::Null | Kind::Scalar { .. } => 1,
            Kind::Seq(items) => items
                .iter()
                .fold(1, |n: u32, item| n.saturating_add(item.count())),
            Kind::Map(entries) => entries.iter().fold(1, |n: u32, e| {
                n.saturating_add(1).saturating_add(e.value.count())
            }),
        }
    }

    /// Removes the node (or, with `key_of`, the mapping entry whose key) has
    /// this id. Returns the (mapping id, key) of a removed entry, or
    /// `Some(None)` for a removed sequence item, `None` if nothing matched.
    pub fn remove(&mut self, id: NodeId, key_of: bool) -> Option<Option<(NodeId, String)>> {
        let self_id = self.id;
        match &mut self.kind {
            Kind::Map(entries) => {
                let hit = entries.iter().position(|e| {
                    if key_of {
                        e.key_id == id
                    } else {
                        e.value.id == id
                    }
                });
                if let Some(i) = hit {
                    let entry = entries.remove(i);
                    return Some(Some((self_id, entry.key)));
                }
                entries.iter_mut().find_map(|e| e.value.remove(id, key_of))
            }
            Kind::Seq(items) => {
                if !key_of {
                    if let Some(i) = items.iter().position(|n| n.id == id) {
                        items.remove(i);
                        return Some(None);
                    }
                }
                items.iter_mut().find_map(|n| n.remove(id, key_of))
            }
            _ => None,
        }
    }
}

/// Joins a key onto a path: `a` + `b` = `a.b`.
pub(crate) fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Deepest nesting accepted; configs are shallow, and the limit keeps the
/// recursive walks that follow safe from hostile input.
const MAX_DEPTH: usize = 64;
/// Cap on nodes, including copies made by aliases ("billion laughs").
const MAX_NODES: u32 = 1_000_000;
/// Cap on the nodes copied by aliases, checked before each copy: a few bytes
/// of aliases to aliases can otherwise ask for millions of nodes. Generous for
/// `<<: *defaults` in generated configs (thousands of jobs x tens of keys).
const MAX_ALIAS_NODES: u32 = 200_000;

enum Frame {
    Seq {
        node: Node,
        items: Vec<Node>,
        anchor: usize,
    },
    Map {
        node: Node,
        entries: Vec<Entry>,
        /// The key read, waiting for its value: (text, plain, id, pos).
        pending_key: Option<(String, bool, NodeId, Pos)>,
        anchor: usize,
    },
}

struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    next_id: NodeId,
    /// Nodes copied by aliases so far.
    alias_nodes: u32,
    root: Option<Node>,
    findings: Vec<Finding>,
}

/// Parses YAML text into a tree. A syntax error ends parsing and is the only
/// finding; other findings (duplicate keys, bad merge keys) leave a usable tree.
pub(crate) fn parse(text: &str) -> (Option<Node>, Vec<Finding>) {
    let mut b = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        next_id: 0,
        alias_nodes: 0,
        root: None,
        findings: Vec::new(),
    };
    let mut documents = 0;
    for event in Parser::new_from_str(text) {
        let (event, span) = match event {
            Ok(ev) => ev,
            Err(e) => {
                let message = e.info().replace('\n', " ");
                return (
                    None,
                    vec![Finding {
                        pos: Some(Pos::from_marker(e.marker())),
                        path: String::new(),
                        message: format!("YAML syntax error: {message}"),
                    }],
                );
            }
        };
        let pos = Pos::from_marker(&span.start);
        let result = match event {
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return (
                        None,
                        vec![Finding {
                            pos: Some(pos),
                            path: String::new(),
                            message: "a config file holds one YAML document; found a second `---`"
                                .to_string(),
                        }],
                    );
                }
                Ok(())
            }
            Event::Scalar(text, style, anchor, tag) => {
                let quoted = !matches!(style, ScalarStyle::Plain)
                    || tag
                        .as_ref()
                        .is_some_and(|t| t.is_yaml_core_schema_tag("str"));
                let kind = if !quoted && matches!(&*text, "" | "~" | "null" | "Null" | "NULL") {
                    Kind::Null
                } else {
                    Kind::Scalar {
                        text: text.into_owned(),
                        plain: !quoted,
                    }
                };
                let node = b.new_node(pos, kind);
                b.finish(node, anchor, Some(!quoted))
            }
            Event::SequenceStart(_, anchor, _) => b.open(pos, Kind::Seq(Vec::new()), anchor),
            Event::MappingStart(_, anchor, _) => b.open(pos, Kind::Map(Vec::new()), anchor),
            Event::SequenceEnd | Event::MappingEnd => b.close(),
            Event::Alias(id) => match b.anchors.get(&id).map(|node| (node, node.count())) {
                Some((_, count))
                    if b.alias_nodes.saturating_add(count) > MAX_ALIAS_NODES
                        || b.next_id.saturating_add(count) >= MAX_NODES =>
                {
                    Err(Finding {
                        pos: Some(pos),
                        path: b.child_path(),
                        message: format!(
                            "aliases expand to more than {MAX_ALIAS_NODES} YAML nodes (or the document to more than {MAX_NODES})"
                        ),
                    })
                }
                Some((node, count)) => {
                    let node = node.clone();
                    b.alias_nodes += count;
                    let path = b.child_path();
                    let node = b.relocate(node, path);
                    b.finish(node, 0, None)
                }
                None => Err(Finding {
                    pos: Some(pos),
                    path: b.child_path(),
                    message: "alias to an unknown anchor".to_string(),
                }),
            },
            _ => Ok(()),
        };
        if let Err(f) = result {
            return (None, vec![f]);
        }
    }
    let root = b.root.take().unwrap_or(Node {
        id: 0,
        pos: Pos { line: 1, col: 1 },
        path: String::new(),
        kind: Kind::Null,
    });
    (Some(root), b.findings)
}

impl Builder {
    fn new_node(&mut self, pos: Pos, kind: Kind) -> Node {
        let id = self.next_id;
        self.next_id += 1;
        Node {
            id,
            pos,
            path: self.child_path(),
            kind,
        }
    }

    /// The path the next node will have, from the frame it goes into.
    fn child_path(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Frame::Seq { node, items, .. }) => format!("{}[{}]", node.path, items.len()),
            Some(Frame::Map {
                node, pending_key, ..
            }) => match pending_key {
                Some((key, ..)) => join_key(&node.path, key),
                // A key itself: errors about it carry the map's path.
                None => node.path.clone(),
            },
        }
    }

    fn check_limits(&self, pos: Pos) -> Result<(), Finding> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Finding {
                pos: Some(pos),
                path: self.child_path(),
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
            });
        }
        if self.next_id >= MAX_NODES {
            return Err(Finding {
                pos: Some(pos),
                path: self.child_path(),
                message: format!("more than {MAX_NODES} YAML nodes (alias expansion?)"),
            });
        }
        Ok(())
    }

    fn open(&mut self, pos: Pos, kind: Kind, anchor: usize) -> Result<(), Finding> {
        self.check_limits(pos)?;
        let node = self.new_node(pos, Kind::Null);
        self.stack.push(match kind {
            Kind::Seq(_) => Frame::Seq {
                node,
                items: Vec::new(),
                anchor,
            },
            _ => Frame::Map {
                node,
                entries: Vec::new(),
                pending_key: None,
                anchor,
            },
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), Finding> {
        match self.stack.pop() {
            Some(Frame::Seq {
                mut node,
                items,
                anchor,
            }) => {
                node.kind = Kind::Seq(items);
                self.finish(node, anchor, None)
            }
            Some(Frame::Map {
                mut node,
                entries,
                anchor,
                ..
            }) => {
                let entries = self.apply_merge_keys(&node.path, entries);
                node.kind = Kind::Map(entries);
                self.finish(node, anchor, None)
            }
            None => Ok(()),
        }
    }

    /// Places a completed node: as the root, a sequence item, a mapping key or
    /// a mapping value. `plain` is `Some` for scalars.
    fn finish(&mut self, node: Node, anchor: usize, plain: Option<bool>) -> Result<(), Finding> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        match frame {
            Frame::Seq { items, .. } => items.push(node),
            Frame::Map {
                node: map,
                entries,
                pending_key,
                ..
            } => match pending_key.take() {
                None => {
                    let text = match node.kind {
                        Kind::Scalar { text, .. } => text,
                        Kind::Null => String::new(),
                        _ => {
                            return Err(Finding {
                                pos: Some(node.pos),
                                path: map.path.clone(),
                                message: "a mapping key must be a plain string".to_string(),
                            })
                        }
                    };
                    *pending_key = Some((text, plain.unwrap_or(false), node.id, node.pos));
                }
                Some((key, key_plain, key_id, key_pos)) => {
                    let merge = key_plain && key == "<<";
                    if !merge {
                        if let Some(first) = entries.iter().find(|e| e.key == key) {
                            self.findings.push(Finding {
                                pos: Some(key_pos),
                                path: join_key(&map.path, &key),
                                message: format!(
                                    "duplicate key `{key}` (first set at line {})",
                                    first.key_pos.line
                                ),
                            });
                            return Ok(());
                        }
                    }
                    entries.push(Entry {
                        key,
                        key_id,
                        key_pos,
                        value: node,
                    });
                }
            },
        }
        Ok(())
    }

    /// Applies YAML merge keys (`<<: *defaults`), which go-yaml (and so
    /// Prometheus) honours: keys written in the mapping win over merged ones.
    fn apply_merge_keys(&mut self, path: &str, entries: Vec<Entry>) -> Vec<Entry> {
        if !entries.iter().any(|e| e.key == "<<") {
            return entries;
        }
        let (merges, mut own): (Vec<Entry>, Vec<Entry>) =
            entries.into_iter().partition(|e| e.key == "<<");
        for merge in merges {
            let sources = match merge.value.kind {
                Kind::Map(_) => vec![merge.value],
                Kind::Seq(items) if items.iter().all(|n| matches!(n.kind, Kind::Map(_))) => items,
                _ => {
                    self.findings.push(Finding {
                        pos: Some(merge.key_pos),
                        path: join_key(path, "<<"),
                        message: "a merge key `<<` takes a mapping or a list of mappings"
                            .to_string(),
                    });
                    continue;
                }
            };
            for source in sources {
                if let Kind::Map(merged) = source.kind {
                    for entry in merged {
                        if own.iter().all(|e| e.key != entry.key) {
                            let value = self.relocate(entry.value, join_key(path, &entry.key));
                            own.push(Entry { value, ..entry });
                        }
                    }
                }
            }
        }
        own
    }

    /// A copy of `node` (from an alias or merge) placed at `path`, with fresh
    /// ids; positions still point at the text that was copied.
    fn relocate(&mut self, node: Node, path: String) -> Node {
        self.next_id = self.next_id.saturating_add(1);
        let id = self.next_id;
        let kind = match node.kind {
            Kind::Seq(items) => Kind::Seq(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, n)| self.relocate(n, format!("{path}[{i}]")))
                    .collect(),
            ),
            Kind::Map(entries) => Kind::Map(
                entries
                    .into_iter()
                    .map(|e| {
                        self.next_id = self.next_id.saturating_add(1);
                        let key_id = self.next_id;
                        let value = self.relocate(e.value, join_key(&path, &e.key));
                        Entry { key_id, value, ..e }
                    })
                    .collect(),
            ),
            other => other,
        };
        Node {
            id,
            pos: node.pos,
            path,
            kind,
        }
    }
}

/// Keys whose values are regex replacement templates (`${1}`, `${name}`), so
/// `${...}` in them is left for the relabeler, as Prometheus does.
const TEMPLATE_KEYS: [&str; 2] = ["replacement", "target_label"];

/// Expands `${VAR}` in every scalar value (not keys) from `lookup`; `$$` is a
/// literal `$`. Unset variables become findings and their nodes are returned
/// for removal, so the rest of the file is still checked.
pub(crate) fn expand_env(
    node: &mut Node,
    lookup: &dyn Fn(&str) -> Option<String>,
    findings: &mut Vec<Finding>,
    unset: &mut Vec<NodeId>,
) {
    expand_node(node, None, lookup, findings, unset);
}

fn expand_node(
    node: &mut Node,
    key: Option<&str>,
    lookup: &dyn Fn(&str) -> Option<String>,
    findings: &mut Vec<Finding>,
    unset: &mut Vec<NodeId>,
) {
    match &mut node.kind {
        Kind::Null => {}
        Kind::Scalar { text, .. } => {
            if key.is_some_and(|k| TEMPLATE_KEYS.contains(&k)) || !text.contains('$') {
                return;
            }
            match expand_str(text, lookup) {
                Ok(expanded) => *text = expanded,
                Err(missing) => {
                    for name in missing {
                        findings.push(Finding {
                            pos: Some(node.pos),
                            path: node.path.clone(),
                            message: format!(
                                "environment variable `{name}` is not set (write `$$` for a literal `$`)"
                            ),
                        });
                    }
                    unset.push(node.id);
                }
            }
        }
        Kind::Seq(items) => {
            for item in items {
                expand_node(item, key, lookup, findings, unset);
            }
        }
        Kind::Map(entries) => {
            for entry in entries {
                expand_node(&mut entry.value, Some(&entry.key), lookup, findings, unset);
            }
        }
    }
}

/// Expands `${NAME}` (NAME = `[A-Za-z_][A-Za-z0-9_]*`) and `$$`. Any other `$`
/// is kept as written. Returns the names of unset variables on failure.
pub(crate) fn expand_str(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        if let Some(body) = after.strip_prefix('{') {
            if let Some(end) = body.find('}') {
                let name = &body[..end];
                if is_env_name(name) {
                    match lookup(name) {
                        Some(value) => out.push_str(&value),
                        None => missing.push(name.to_string()),
                    }
                    rest = &body[end + 1..];
                    continue;
                }
            }
        }
        out.push('$');
        rest = after;
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("db1".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_braced_names_and_dollar_escapes() {
        assert_eq!(expand_str("${HOST}:9100", &env).unwrap(), "db1:9100");
        assert_eq!(expand_str("a${EMPTY}b", &env).unwrap(), "ab");
        assert_eq!(expand_str("$${HOST}", &env).unwrap(), "${HOST}");
        assert_eq!(expand_str("cost$", &env).unwrap(), "cost$");
        assert_eq!(expand_str("$HOST ${1} ${", &env).unwrap(), "$HOST ${1} ${");
        assert_eq!(
            expand_str("${NOPE}/${HOST}/${ALSO_NOPE}", &env).unwrap_err(),
            vec!["NOPE".to_string(), "ALSO_NOPE".to_string()]
        );
    }

    #[test]
    fn nodes_carry_paths_and_positions() {
        let (root, findings) = parse("a:\n  b:\n    - x\n    - y: 1\n");
        assert!(findings.is_empty());
        let root = root.unwrap();
        let b = root.get("a").and_then(|a| a.get("b")).unwrap();
        assert_eq!(b.path, "a.b");
        let Kind::Seq(items) = &b.kind else {
            panic!("expected a sequence")
        };
        assert_eq!(items[1].path, "a.b[1]");
        let y = items[1].get("y").unwrap();
        assert_eq!(
            (y.path.as_str(), y.pos),
            ("a.b[1].y", Pos { line: 4, col: 10 })
        );
    }

    #[test]
    fn merge_keys_and_aliases_are_resolved() {
        let text = "base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\nd: *b\n";
        let (root, findings) = parse(text);
        assert!(findings.is_empty(), "{findings:?}");
        let root = root.unwrap();
        let c = root.get("c").unwrap();
        let text_of = |n: &Node| match &n.kind {
            Kind::Scalar { text, .. } => text.clone(),
            _ => String::new(),
        };
        assert_eq!(text_of(c.get("y").unwrap()), "3");
        assert_eq!(text_of(c.get("x").unwrap()), "1");
        assert_eq!(c.get("x").unwrap().path, "c.x");
        assert_eq!(root.get("d").unwrap().get("x").unwrap().path, "d.x");
    }

    #[test]
    fn duplicate_keys_are_reported() {
        let (_, findings) = parse("a: 1\nb: 2\na: 3\n");
        assert_eq!(
            findings[0].render("f.yml"),
            "f.yml:3:1: a: duplicate key `a` (first set at line 1)"
        );
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let (root, findings) = parse("a: [1, 2\nb: 3\n");
        assert!(root.is_none());
        assert_eq!(findings.len(), 1);
        assert!(findings[0].pos.is_some());
        assert!(findings[0].message.starts_with("YAML syntax error"));
    }

    /// Aliases of aliases ("billion laughs") once grew the tree to millions
    /// of nodes before the node limit was next checked (it was checked only
    /// when a sequence or mapping opened): 834 bytes took over 10 s and
    /// gigabytes. Found by the `config` fuzz target.
    #[test]
    fn regression_fuzz_alias_expansion_is_bounded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..6 {
            let aliases = vec![format!("*a{}", level - 1); 30].join(", ");
            text.push_str(&format!("a{level}: &a{level} [{aliases}]\n"));
        }
        let started = std::time::Instant::now();
        let (root, findings) = parse(&text);
        assert!(root.is_none());
        assert_eq!(findings.len(), 1);
        assert!(
            findings[0].message.contains("aliases expand"),
            "{findings:?}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let text = "[".repeat(10_000);
        let (root, findings) = parse(&text);
        assert!(root.is_none());
        assert_eq!(findings.len(), 1);
    }
}
