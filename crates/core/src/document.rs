//! Reading and writing the YAML documents people edit: `tenant.yaml` and `tenantry.yaml`.
//!
//! A person fixing a file wants every mistake in it at once, each with its line and field, in
//! words about the file rather than about Rust types (`must be a whole number ≥ 0`, not
//! `invalid type: string, expected u32`). serde stops at the first error, so a document is
//! read in two steps: serde-saphyr (bounded by its budget, so a hostile file cannot exhaust
//! memory) turns the text into a tree of nodes that remember where they were written, and the
//! typed value is then deserialized from that tree. When a value is wrong, its node is
//! reported and set aside, and deserialization runs again without it, until the rest of the
//! document reads; a required field that was set aside is not reported a second time as
//! missing. Since the tree is Tenantry's own, it also carries the file's conventions: an empty
//! mapping or list (`spec:` with every field commented out) means `{}` or `[]`.

use std::{collections::HashSet, fmt};

use serde::{
    Deserialize, Deserializer, Serialize,
    de::{self, DeserializeOwned, DeserializeSeed, Visitor},
};
use serde_saphyr::Spanned;
use tenantry_api::{Platform, tenant::TenantFile};

/// One problem in a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Field path of the offending value, when the problem is about a field.
    pub path: Option<String>,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// What is wrong, and what would be accepted.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "{line}:{column}: ")?;
        }
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// A document that could not be read as its type: every problem found, in document order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct DocumentError {
    /// The problems; never empty.
    pub problems: Vec<Problem>,
}

impl DocumentError {
    /// A problem with the whole file (not UTF-8, unreadable) rather than with a field.
    pub fn whole_file(message: impl Into<String>) -> Self {
        Self {
            problems: vec![Problem {
                path: None,
                line: None,
                column: None,
                message: message.into(),
            }],
        }
    }

    /// One line per problem, each starting with `file:` so that editors can jump to it.
    pub fn in_file(&self, file: &dyn fmt::Display) -> String {
        self.problems
            .iter()
            .map(|p| match p.line {
                Some(_) => format!("{file}:{p}"),
                None => format!("{file}: {p}"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// More problems than this in one file are not worth listing: the file is probably not the
/// document it is meant to be.
const MAX_PROBLEMS: usize = 50;

fn options() -> serde_saphyr::Options {
    serde_saphyr::options! { with_snippet: false }
}

/// Parse one YAML document into `T`, reporting every problem with its field path and position.
pub fn from_yaml<T: DeserializeOwned>(text: &str) -> Result<T, DocumentError> {
    let doc = Tree::parse(text)?;
    doc.deserialize()
}

/// Serialize a value as one YAML document.
pub fn to_yaml<T: Serialize>(value: &T) -> String {
    // Serializing plain data (maps, strings, numbers) into a String cannot fail; the only
    // errors serde-saphyr reports are for unsupported shapes Tenantry never produces.
    // Long single-line values (regular expressions, URLs) stay on one plain line: folding
    // them would make diffs and copy-paste harder for no gain.
    let options = serde_saphyr::ser_options! { folded_wrap_chars: 100_000 };
    serde_saphyr::to_string_with_options(value, options)
        .unwrap_or_else(|e| format!("# unserializable: {e}\n"))
}

/// Parse `tenant.yaml`, checking `apiVersion` and `kind`.
pub fn parse_tenant_file(text: &str) -> Result<TenantFile, DocumentError> {
    let doc = Tree::parse(text)?;
    doc.check_type("Tenant")?;
    doc.deserialize()
}

/// Parse `tenantry.yaml`, checking `apiVersion` and `kind`. An empty file is the defaults.
pub fn parse_platform(text: &str) -> Result<Platform, DocumentError> {
    if text.trim().is_empty() {
        return Ok(Platform::default());
    }
    let doc = Tree::parse(text)?;
    doc.check_type("Platform")?;
    doc.deserialize()
}

// ---------------------------------------------------------------------------------------------
// The tree

/// What serde-saphyr reads: any YAML node, with positions.
enum Raw {
    Null,
    Bool(bool),
    UInt(u64),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<Raw>, Spanned<Raw>)>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawVisitor;
        impl<'de> Visitor<'de> for RawVisitor {
            type Value = Raw;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_none<E>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
                Raw::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
                Ok(Raw::Bool(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
                Ok(Raw::UInt(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
                Ok(Raw::Int(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
                Ok(Raw::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
                Ok(Raw::Str(v.to_owned()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Raw::Seq(items))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Raw::Map(entries))
            }
        }
        deserializer.deserialize_any(RawVisitor)
    }
}

/// A scalar's YAML type, as YAML's core schema reads a plain scalar.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    UInt(u64),
    Int(i64),
    Float(f64),
    Str,
}

#[derive(Debug)]
enum Kind {
    /// A scalar and its text: the string for strings, the source text otherwise (`0x1F`,
    /// `1.50`), so that a text field given a plain number gets what was written.
    Scalar(Scalar, String),
    Seq(Vec<usize>),
    /// Key and value nodes.
    Map(Vec<(usize, usize)>),
}

#[derive(Debug)]
struct Node {
    kind: Kind,
    /// Dotted field path; empty for the document itself.
    path: String,
    line: u64,
    column: u64,
}

/// A parsed document: nodes in document order, the root first.
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn parse(text: &str) -> Result<Self, DocumentError> {
        let raw: Spanned<Raw> =
            serde_saphyr::from_str_with_options(text, options()).map_err(|e| {
                let location = e.location();
                let mut message = e.without_snippet().to_string();
                // The position is reported separately; drop serde-saphyr's " at line L, column C".
                if let Some(at) = message.rfind(" at line ")
                    && message[at..].contains(", column ")
                {
                    message.truncate(at);
                }
                DocumentError {
                    problems: vec![Problem {
                        path: None,
                        line: location.map(|l| l.line()),
                        column: location.map(|l| l.column()),
                        message,
                    }],
                }
            })?;
        let mut tree = Tree { nodes: Vec::new() };
        tree.add(text, raw, String::new());
        Ok(tree)
    }

    /// Add `raw` and everything under it; returns its index.
    fn add(&mut self, text: &str, raw: Spanned<Raw>, path: String) -> usize {
        let id = self.nodes.len();
        let Spanned {
            value,
            referenced,
            defined,
        } = raw;
        let source = || {
            let span = defined.span();
            span.byte_offset()
                .zip(span.byte_len())
                .and_then(|(at, len)| text.get(at as usize..(at + len) as usize))
                .map(str::to_owned)
        };
        let scalar =
            |scalar: Scalar, fallback: String| Kind::Scalar(scalar, source().unwrap_or(fallback));
        let (kind, children) = match value {
            Raw::Null => (scalar(Scalar::Null, String::new()), None),
            Raw::Bool(b) => (scalar(Scalar::Bool(b), b.to_string()), None),
            Raw::UInt(v) => (scalar(Scalar::UInt(v), v.to_string()), None),
            Raw::Int(v) => (scalar(Scalar::Int(v), v.to_string()), None),
            Raw::Float(v) => (scalar(Scalar::Float(v), v.to_string()), None),
            Raw::Str(s) => (Kind::Scalar(Scalar::Str, s), None),
            Raw::Seq(items) => (Kind::Seq(Vec::new()), Some(Err(items))),
            Raw::Map(entries) => (Kind::Map(Vec::new()), Some(Ok(entries))),
        };
        self.nodes.push(Node {
            kind,
            path: path.clone(),
            line: referenced.line(),
            column: referenced.column(),
        });
        match children {
            None => {}
            Some(Err(items)) => {
                let ids = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| self.add(text, item, format!("{path}[{i}]")))
                    .collect();
                self.nodes[id].kind = Kind::Seq(ids);
            }
            Some(Ok(entries)) => {
                let mut ids = Vec::new();
                for (key, value) in entries {
                    let key_id = self.add(text, key, path.clone());
                    let name = self.key_text(key_id);
                    let child = if path.is_empty() {
                        name
                    } else {
                        format!("{path}.{name}")
                    };
                    self.nodes[key_id].path.clone_from(&child);
                    let value_id = self.add(text, value, child);
                    ids.push((key_id, value_id));
                }
                self.nodes[id].kind = Kind::Map(ids);
            }
        }
        id
    }

    fn key_text(&self, id: usize) -> String {
        match &self.nodes[id].kind {
            Kind::Scalar(_, text) => text.clone(),
            _ => "?".to_owned(),
        }
    }

    /// The top-level scalar `field`, if the document is a mapping that sets it.
    fn top_level(&self, field: &str) -> Option<&Node> {
        let Kind::Map(entries) = &self.nodes.first()?.kind else {
            return None;
        };
        entries
            .iter()
            .find(|(k, _)| self.key_text(*k) == field)
            .map(|(_, v)| &self.nodes[*v])
    }

    /// A document of another kind or version is refused before its fields are read: their
    /// errors would only be noise.
    fn check_type(&self, want_kind: &str) -> Result<(), DocumentError> {
        let mut problems = Vec::new();
        let scalar = |node: &Node| match &node.kind {
            Kind::Scalar(_, text) => text.clone(),
            _ => String::new(),
        };
        if let Some(node) = self.top_level("apiVersion")
            && scalar(node) != tenantry_api::API_VERSION
        {
            problems.push(problem_at(
                node,
                format!(
                    "is {:?}; this version of Tenantry reads {:?}",
                    scalar(node),
                    tenantry_api::API_VERSION
                ),
            ));
        }
        if let Some(node) = self.top_level("kind")
            && scalar(node) != want_kind
        {
            problems.push(problem_at(
                node,
                format!("is {:?}; expected {want_kind:?}", scalar(node)),
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(DocumentError { problems })
        }
    }

    /// Deserialize `T`, collecting every problem (see the module documentation).
    fn deserialize<T: DeserializeOwned>(&self) -> Result<T, DocumentError> {
        let mut set_aside = HashSet::new();
        let mut problems = Vec::new();
        // Every round either succeeds, stops, or sets one more node aside.
        for _ in 0..=self.nodes.len() {
            let de = De {
                tree: self,
                set_aside: &set_aside,
                id: 0,
                empty: false,
            };
            let error = match T::deserialize(de) {
                Ok(value) if problems.is_empty() => return Ok(value),
                Ok(_) => break,
                Err(error) => error,
            };
            let id = error.node.unwrap_or(0);
            let node = &self.nodes[id];
            let consequence = error
                .missing
                .as_deref()
                .is_some_and(|field| self.has_set_aside_child(id, field, &set_aside));
            if !consequence {
                let path = match &error.missing {
                    Some(field) if node.path.is_empty() => field.clone(),
                    Some(field) => format!("{}.{field}", node.path),
                    None => node.path.clone(),
                };
                problems.push(Problem {
                    path: (!path.is_empty()).then_some(path),
                    ..problem_at(node, error.message)
                });
            }
            if id == 0 || !set_aside.insert(id) || problems.len() >= MAX_PROBLEMS {
                break;
            }
        }
        if problems.is_empty() {
            problems.push(problem_at(&self.nodes[0], "cannot be read".to_owned()));
        }
        Err(DocumentError { problems })
    }

    /// Whether a missing `field` of mapping `id` is explained by a problem already reported.
    fn has_set_aside_child(&self, id: usize, field: &str, set_aside: &HashSet<usize>) -> bool {
        let Kind::Map(entries) = &self.nodes[id].kind else {
            return false;
        };
        // The field itself was set aside, or a misspelling of it was.
        entries.iter().any(|&(k, v)| {
            (set_aside.contains(&k) || set_aside.contains(&v))
                && closest(&self.key_text(k), &[field]).is_some()
        })
    }
}

fn problem_at(node: &Node, message: String) -> Problem {
    Problem {
        path: (!node.path.is_empty()).then(|| node.path.clone()),
        line: (node.line > 0).then_some(node.line),
        column: (node.column > 0).then_some(node.column),
        message,
    }
}

// ---------------------------------------------------------------------------------------------
// Errors in the user's terms

/// A deserialization error, and the node it is about once known.
#[derive(Debug)]
struct DeError {
    message: String,
    node: Option<usize>,
    /// For a missing required field: its name (the node is the mapping lacking it).
    missing: Option<String>,
}

impl DeError {
    fn new(message: String) -> Self {
        Self {
            message,
            node: None,
            missing: None,
        }
    }

    /// The innermost node an error passes through is the one it is about.
    fn at(mut self, id: usize) -> Self {
        self.node.get_or_insert(id);
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

/// What a value must be, from what serde expected.
fn must_be(expected: &str) -> String {
    let what = match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number ≥ 0",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "a string" | "a borrowed string" | "a character" | "string or map" => "text",
        "a sequence" | "a tuple" => "a list",
        "unit" => "empty",
        e if e.starts_with("struct ") || e.starts_with("a map") || e == "map" => {
            "a mapping of fields (key: value)"
        }
        e if e.starts_with("enum ") => "one of the names listed for it",
        e if e.starts_with("tuple") => "a list",
        other => return format!("must be {other}"),
    };
    format!("must be {what}")
}

fn found(unexpected: &de::Unexpected<'_>) -> String {
    match unexpected {
        de::Unexpected::Bool(b) => b.to_string(),
        de::Unexpected::Unsigned(n) => n.to_string(),
        de::Unexpected::Signed(n) => n.to_string(),
        de::Unexpected::Float(n) => n.to_string(),
        de::Unexpected::Char(c) => format!("{c:?}"),
        de::Unexpected::Str(s) => format!("{s:?}"),
        de::Unexpected::Unit | de::Unexpected::Option => "empty".to_owned(),
        de::Unexpected::Seq => "a list".to_owned(),
        de::Unexpected::Map => "a mapping".to_owned(),
        other => other.to_string(),
    }
}

/// The allowed name closest to a misspelt one, when it is close enough to be a likely typo.
fn closest<'a>(given: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let distance = |a: &str, b: &str| {
        let a: Vec<char> = a.to_lowercase().chars().collect();
        let b: Vec<char> = b.to_lowercase().chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.iter().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    };
    allowed
        .iter()
        .map(|a| (distance(given, a), *a))
        .filter(|(d, a)| *d <= a.len().div_ceil(3))
        .min()
        .map(|(_, a)| a)
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::new(msg.to_string())
    }

    fn invalid_type(unexpected: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Self::new(format!(
            "{}, not {}",
            must_be(&expected.to_string()),
            found(&unexpected)
        ))
    }

    fn invalid_value(unexpected: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        let expected = expected.to_string();
        let range = match expected.as_str() {
            "u8" => Some(u64::from(u8::MAX)),
            "u16" => Some(u64::from(u16::MAX)),
            "u32" => Some(u64::from(u32::MAX)),
            _ => None,
        };
        match (range, &unexpected) {
            (Some(max), de::Unexpected::Unsigned(_)) => Self::new(format!(
                "must be a whole number from 0 to {max}, not {}",
                found(&unexpected)
            )),
            _ => Self::new(format!(
                "{}, not {}",
                must_be(&expected),
                found(&unexpected)
            )),
        }
    }

    fn invalid_length(len: usize, expected: &dyn de::Expected) -> Self {
        Self::new(format!("has {len} entries; expected {expected}"))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let hint = closest(variant, expected)
            .map(|c| format!("did you mean {c}? "))
            .unwrap_or_default();
        Self::new(format!(
            "{variant:?} is not allowed; {hint}allowed: {}",
            expected.join(", ")
        ))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let hint = closest(field, expected)
            .map(|c| format!("did you mean {c}? "))
            .unwrap_or_default();
        Self::new(format!(
            "unknown field {field:?}; {hint}the fields here are: {}",
            expected.join(", ")
        ))
    }

    fn missing_field(field: &'static str) -> Self {
        Self {
            missing: Some(field.to_owned()),
            ..Self::new("is required".to_owned())
        }
    }

    fn duplicate_field(field: &'static str) -> Self {
        Self::new(format!("{field:?} is set twice"))
    }
}

// ---------------------------------------------------------------------------------------------
// Deserializing from the tree

#[derive(Clone, Copy)]
struct De<'a> {
    tree: &'a Tree,
    set_aside: &'a HashSet<usize>,
    id: usize,
    /// Read the node as empty: the content of a variant named without any (`delivery: none`).
    empty: bool,
}

static EMPTY: Kind = Kind::Scalar(Scalar::Null, String::new());

impl<'a> De<'a> {
    fn kind(&self) -> &'a Kind {
        if self.empty {
            &EMPTY
        } else {
            &self.tree.nodes[self.id].kind
        }
    }

    fn at(&self, id: usize) -> Self {
        Self {
            id,
            empty: false,
            ..*self
        }
    }

    fn keep(&self, id: usize) -> bool {
        !self.set_aside.contains(&id)
    }

    fn map<'de, V: Visitor<'de>>(
        self,
        entries: &'a [(usize, usize)],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_map(MapAccess {
            de: self,
            entries: entries
                .iter()
                .filter(|(k, v)| self.keep(*k) && self.keep(*v))
                .copied()
                .collect::<Vec<_>>()
                .into_iter(),
            value: None,
        })
    }

    fn seq<'de, V: Visitor<'de>>(
        self,
        items: &'a [usize],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_seq(SeqAccess {
            de: self,
            items: items
                .iter()
                .filter(|i| self.keep(**i))
                .copied()
                .collect::<Vec<_>>()
                .into_iter(),
        })
    }

    /// A scalar's text for a field that wants text, whatever YAML type its plain form has.
    fn text<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.kind() {
            Kind::Scalar(Scalar::Null, _) => visitor.visit_unit(),
            Kind::Scalar(_, text) => visitor.visit_str(text),
            _ => self.deserialize_any(visitor),
        }
    }

    /// A number for a field that wants one; a quoted number is read as the number.
    fn number<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.kind() {
            Kind::Scalar(Scalar::Str, text) => {
                match (text.trim().parse::<u64>(), text.trim().parse::<i64>()) {
                    (Ok(v), _) => visitor.visit_u64(v),
                    (_, Ok(v)) => visitor.visit_i64(v),
                    _ => visitor.visit_str(text),
                }
            }
            _ => self.deserialize_any(visitor),
        }
    }
}

macro_rules! numbers {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.number(visitor)
        }
    )*};
}

macro_rules! texts {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.text(visitor)
        }
    )*};
}

impl<'de> Deserializer<'de> for De<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.kind() {
            Kind::Scalar(Scalar::Null, _) => visitor.visit_unit(),
            Kind::Scalar(Scalar::Bool(b), _) => visitor.visit_bool(*b),
            Kind::Scalar(Scalar::UInt(v), _) => visitor.visit_u64(*v),
            Kind::Scalar(Scalar::Int(v), _) => visitor.visit_i64(*v),
            Kind::Scalar(Scalar::Float(v), _) => visitor.visit_f64(*v),
            Kind::Scalar(Scalar::Str, text) => visitor.visit_str(text),
            Kind::Seq(items) => self.seq(items, visitor),
            Kind::Map(entries) => self.map(entries, visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.kind() {
            Kind::Scalar(Scalar::Str, text) if text == "true" => visitor.visit_bool(true),
            Kind::Scalar(Scalar::Str, text) if text == "false" => visitor.visit_bool(false),
            _ => self.deserialize_any(visitor),
        }
    }

    numbers!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64);

    texts!(deserialize_char deserialize_str deserialize_string deserialize_bytes
        deserialize_byte_buf deserialize_identifier);

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.kind() {
            Kind::Scalar(Scalar::Null, _) => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.kind() {
            // A list with every item commented out is an empty list.
            Kind::Scalar(Scalar::Null, _) => self.seq(&[], visitor),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.kind() {
            // A mapping with every field commented out (`spec:`) is an empty mapping.
            Kind::Scalar(Scalar::Null, _) => self.map(&[], visitor),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.kind() {
            Kind::Scalar(Scalar::Null, _) => visitor.visit_unit(),
            // `delivery: none`: a variant named without content.
            Kind::Scalar(..) => visitor.visit_enum(EnumAccess {
                de: self,
                variant: self.id,
                content: None,
            }),
            Kind::Map(entries) => {
                let entries: Vec<_> = entries
                    .iter()
                    .filter(|(k, v)| self.keep(*k) && self.keep(*v))
                    .collect();
                match entries.as_slice() {
                    [(k, v)] => visitor.visit_enum(EnumAccess {
                        de: self,
                        variant: *k,
                        content: Some(*v),
                    }),
                    _ => Err(DeError::new(format!(
                        "must set exactly one kind, not {}",
                        entries
                            .iter()
                            .map(|(k, _)| self.tree.key_text(*k))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ))),
                }
            }
            Kind::Seq(_) => self.deserialize_any(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct MapAccess<'a> {
    de: De<'a>,
    entries: std::vec::IntoIter<(usize, usize)>,
    value: Option<usize>,
}

impl<'de> de::MapAccess<'de> for MapAccess<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(self.de.at(key))
            .map(Some)
            .map_err(|e| e.at(key))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let value = self
            .value
            .take()
            .ok_or_else(|| DeError::new("a value was read before its key".to_owned()))?;
        seed.deserialize(self.de.at(value)).map_err(|e| e.at(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct SeqAccess<'a> {
    de: De<'a>,
    items: std::vec::IntoIter<usize>,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        seed.deserialize(self.de.at(item))
            .map(Some)
            .map_err(|e| e.at(item))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct EnumAccess<'a> {
    de: De<'a>,
    variant: usize,
    content: Option<usize>,
}

impl<'a, 'de> de::EnumAccess<'de> for EnumAccess<'a> {
    type Error = DeError;
    type Variant = VariantAccess<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantAccess<'a>), DeError> {
        let variant = seed
            .deserialize(self.de.at(self.variant))
            .map_err(|e| e.at(self.variant))?;
        Ok((
            variant,
            VariantAccess {
                de: self.de,
                content: self.content,
            },
        ))
    }
}

struct VariantAccess<'a> {
    de: De<'a>,
    content: Option<usize>,
}

impl VariantAccess<'_> {
    /// The variant's content; a variant named without content reads as empty.
    fn content<T>(self, read: impl FnOnce(De<'_>) -> Result<T, DeError>) -> Result<T, DeError> {
        match self.content {
            Some(id) => read(self.de.at(id)).map_err(|e| e.at(id)),
            None => read(De {
                empty: true,
                ..self.de
            }),
        }
    }
}

impl<'de> de::VariantAccess<'de> for VariantAccess<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.content {
            None => Ok(()),
            Some(id) => {
                let de = self.de.at(id);
                match de.kind() {
                    Kind::Scalar(Scalar::Null, _) => Ok(()),
                    _ => Err(DeError::new("takes no settings".to_owned()).at(id)),
                }
            }
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        self.content(|de| seed.deserialize(de))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.content(|de| de.deserialize_seq(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.content(|de| de.deserialize_map(visitor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(spec: &str) -> String {
        format!(
            "apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: shop\nspec:\n{spec}"
        )
    }

    #[test]
    fn unknown_fields_name_the_path_and_position() {
        let err = parse_tenant_file(&tenant("  podSecurty: baseline\n")).unwrap_err();
        let [problem] = err.problems.as_slice() else {
            panic!("{err}")
        };
        assert_eq!(problem.line, Some(6), "{err}");
        assert_eq!(problem.column, Some(3), "{err}");
        assert_eq!(problem.path.as_deref(), Some("spec.podSecurty"), "{err}");
        assert!(
            problem.message.contains("did you mean podSecurity?"),
            "suggests the field: {err}"
        );
        assert!(
            problem.message.contains("quota"),
            "lists allowed fields: {err}"
        );
    }

    #[test]
    fn wrong_types_name_the_nested_path_in_the_users_terms() {
        let err = parse_tenant_file(&tenant("  quota:\n    pods: lots\n")).unwrap_err();
        let [problem] = err.problems.as_slice() else {
            panic!("{err}")
        };
        assert_eq!(problem.path.as_deref(), Some("spec.quota.pods"), "{err}");
        assert_eq!(problem.line, Some(7), "{err}");
        assert_eq!(problem.message, "must be a whole number ≥ 0, not \"lots\"");
    }

    /// Fails before the two-step parser: serde stopped at `spec.quota.pods`.
    #[test]
    fn every_problem_in_a_tenant_file_is_reported_at_once() {
        let err = parse_tenant_file(&tenant(
            "  podSecurity: privileged\n  quota:\n    pods: lots\n    services: -1\n  mesh: maybe\n  owners:\n  - kind: User\n    nmae: ann\n",
        ))
        .unwrap_err();
        let got: Vec<(Option<&str>, Option<u64>, &str)> = err
            .problems
            .iter()
            .map(|p| (p.path.as_deref(), p.line, p.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Some("spec.podSecurity"),
                    Some(6),
                    "\"privileged\" is not allowed; allowed: restricted, baseline"
                ),
                (
                    Some("spec.quota.pods"),
                    Some(8),
                    "must be a whole number ≥ 0, not \"lots\""
                ),
                (
                    Some("spec.quota.services"),
                    Some(9),
                    "must be a whole number ≥ 0, not -1"
                ),
                (
                    Some("spec.mesh"),
                    Some(10),
                    "must be true or false, not \"maybe\""
                ),
                (
                    Some("spec.owners[0].nmae"),
                    Some(13),
                    "unknown field \"nmae\"; did you mean name? the fields here are: kind, name, namespace"
                ),
            ],
            "{err}"
        );
        // The owner whose name was misspelt is not also reported as lacking one.
        assert!(
            !err.to_string().contains("owners[0].name: is required"),
            "{err}"
        );
    }

    #[test]
    fn every_problem_in_a_platform_file_is_reported_at_once() {
        let err = parse_platform(
            "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\nclusterName: [a]\ndns:\n  ports: [53, 99999]\npolicies:\n  podSecurity:\n    version: v1.030\n  protectPlatformObjects:\n    exemptUsers: [\"system:*:x\"]\ncredentials:\n  maxTokenDuration: 5m\nflux:\n  interval: 1d\n",
        )
        .unwrap_err();
        let paths: Vec<&str> = err
            .problems
            .iter()
            .filter_map(|p| p.path.as_deref())
            .collect();
        assert_eq!(
            paths,
            [
                "clusterName",
                "dns.ports[1]",
                "policies.podSecurity.version",
                "policies.protectPlatformObjects.exemptUsers[0]",
                "credentials.maxTokenDuration",
                "flux.interval",
            ],
            "{err}"
        );
        assert!(err.problems.iter().all(|p| p.line.is_some()), "{err}");
        assert!(
            err.to_string().contains("must be text, not a list"),
            "{err}"
        );
        assert!(
            err.to_string().contains("from 0 to 65535, not 99999"),
            "{err}"
        );
    }

    /// Fails before: `spec:` with nothing under it was "expected mapping start".
    #[test]
    fn an_empty_mapping_is_empty() {
        let file = parse_tenant_file(&tenant("")).unwrap();
        assert_eq!(file.spec, tenantry_api::TenantSpec::default());
        let file = parse_tenant_file(&tenant(
            "  # podSecurity: baseline\n  quota:\n  namespaces:\n",
        ))
        .unwrap();
        assert_eq!(file.spec.quota, None);
        assert!(file.spec.namespaces.is_empty());
        let platform = parse_platform(
            "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\ndefaults:\npolicies:\ncredentials:\n",
        )
        .unwrap();
        assert_eq!(platform.defaults, tenantry_api::TenantSpec::default());
        assert_eq!(platform.policies, Platform::default().policies);
        assert_eq!(platform.credentials, Platform::default().credentials);
    }

    #[test]
    fn text_fields_take_what_was_written() {
        let platform = parse_platform(
            "clusterName: 0x1F\nmeshLabel:\n  key: mesh\n  value: true\ndns:\n  ports: [\"53\"]\n",
        )
        .unwrap();
        assert_eq!(platform.cluster_name, "0x1F");
        assert_eq!(platform.mesh_label.value, "true");
        assert_eq!(platform.dns.ports, [53]);
    }

    #[test]
    fn delivery_is_one_named_kind() {
        let file = parse_tenant_file(&tenant("  delivery:\n    none: {}\n")).unwrap();
        assert!(matches!(
            file.spec.delivery,
            Some(tenantry_api::tenant::Delivery::None(_))
        ));
        let file = parse_tenant_file(&tenant("  delivery:\n    fluxGit:\n")).unwrap();
        assert!(matches!(
            file.spec.delivery,
            Some(tenantry_api::tenant::Delivery::FluxGit(_))
        ));
        let err = parse_tenant_file(&tenant("  delivery:\n    fluxGit: {}\n    argoCD: {}\n"))
            .unwrap_err();
        assert!(err.to_string().contains("exactly one kind"), "{err}");
        let err = parse_tenant_file(&tenant("  delivery:\n    fluxGitt: {}\n")).unwrap_err();
        assert!(err.to_string().contains("did you mean fluxGit?"), "{err}");
        let err =
            parse_tenant_file(&tenant("  delivery:\n    fluxGit:\n      url: [x]\n")).unwrap_err();
        assert_eq!(
            err.problems[0].path.as_deref(),
            Some("spec.delivery.fluxGit.url"),
            "{err}"
        );
    }

    #[test]
    fn wrong_kind_is_refused_with_its_position() {
        let err = parse_tenant_file(
            "apiVersion: tenantry.dev/v1alpha1\nkind: Platform\nmetadata:\n  name: shop\n",
        )
        .unwrap_err();
        let [problem] = err.problems.as_slice() else {
            panic!("{err}")
        };
        assert_eq!(problem.path.as_deref(), Some("kind"));
        assert_eq!(problem.line, Some(2));
    }

    #[test]
    fn missing_required_fields_are_named() {
        let err =
            parse_tenant_file("apiVersion: tenantry.dev/v1alpha1\nkind: Tenant\n").unwrap_err();
        assert_eq!(err.problems[0].path.as_deref(), Some("metadata"), "{err}");
        assert_eq!(err.problems[0].message, "is required");
    }

    #[test]
    fn empty_platform_file_is_all_defaults() {
        assert_eq!(parse_platform("").unwrap(), Platform::default());
        assert_eq!(
            parse_platform("apiVersion: tenantry.dev/v1alpha1\nkind: Platform\n").unwrap(),
            Platform::default()
        );
    }

    #[test]
    fn platform_round_trips() {
        let yaml = to_yaml(&Platform::default());
        assert_eq!(parse_platform(&yaml).unwrap(), Platform::default());
    }

    #[test]
    fn malformed_yaml_has_a_position() {
        let err = parse_platform("kind: [unclosed\n").unwrap_err();
        assert!(err.problems[0].line.is_some(), "{err}");
    }

    #[test]
    fn aliases_and_anchors_still_read() {
        let platform = parse_platform(
            "dns:\n  podLabels: &labels\n    k8s-app: kube-dns\nmeshLabel:\n  key: k\n  value: v\ngrants: {}\nreservedNames: [a, b*]\npullSecret:\n  namespaceLabel: {key: x, value: y}\n  refreshInterval: 90m\n",
        )
        .unwrap();
        assert_eq!(platform.reserved_names.len(), 2);
        assert_eq!(platform.pull_secret.refresh_interval.as_str(), "90m");
    }

    #[test]
    fn errors_in_a_file_name_the_file_on_every_line() {
        let err = parse_tenant_file(&tenant("  mesh: maybe\n  pods: 1\n")).unwrap_err();
        let text = err.in_file(&"tenants/shop/tenant.yaml");
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            text.lines()
                .all(|l| l.starts_with("tenants/shop/tenant.yaml:")),
            "{text}"
        );
    }
}
