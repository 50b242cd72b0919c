//! Reading manifests: multi-document YAML and JSON in, JSON values with their positions out.
//!
//! Manifests come from tenants, so the reader is hostile-input-safe before it is fast: every
//! parse runs under a budget (input size, nesting depth, node and alias counts), YAML bombs
//! and deep nesting fail with an error instead of exhausting memory or the stack, and nothing
//! panics. Positions matter as much as values: a finding is only useful if it points at a
//! line, so each document carries its index in the stream and its first line, and
//! [`locate`] maps a finding's field path back to the line that holds it. Locating re-reads
//! the text with spans and is done only for documents that have findings, which keeps the
//! common case (a clean manifest) at one plain parse.

use std::fmt;

use serde_json::Value;
use serde_saphyr::Spanned;

/// The largest input accepted, per file or stream.
pub const MAX_INPUT_BYTES: usize = 64 * 1024 * 1024;
/// The deepest nesting of mappings and sequences accepted in YAML. Kubernetes objects, CRD
/// schemas included, stay far below it; it keeps recursion within a 2 MiB thread stack even
/// in debug builds. (JSON is bounded by serde_json's own limit of 128.)
pub const MAX_DEPTH: usize = 64;
/// The most documents one input may hold.
pub const MAX_DOCUMENTS: usize = 100_000;

/// The syntax of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One or more YAML documents separated by `---`.
    Yaml,
    /// One or more concatenated JSON values.
    Json,
}

impl Format {
    /// JSON for a `.json` file name, YAML otherwise.
    pub fn for_file_name(name: &str) -> Self {
        if name.to_ascii_lowercase().ends_with(".json") {
            Format::Json
        } else {
            Format::Yaml
        }
    }

    /// For stdin: JSON when the text starts with `{` or `[`, YAML otherwise. (JSON is valid
    /// YAML too, but the JSON reader is faster and its errors read better.)
    pub fn sniff(text: &str) -> Self {
        match text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .as_bytes()
            .first()
        {
            Some(b'{' | b'[') => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// One document of an input.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// 1-based position in the stream, counting every `---`-separated document (empty ones
    /// included), as a person counts them.
    pub index: usize,
    /// 1-based line where the document's content starts.
    pub line: u64,
    /// The document.
    pub value: Value,
}

/// An input that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{line}:{column}: {}", self.message),
            (Some(line), None) => write!(f, "{line}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl ParseError {
    fn whole(message: impl Into<String>) -> Self {
        Self {
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            max_documents: MAX_DOCUMENTS,
            max_nodes: 20_000_000,
            max_events: 40_000_000,
            max_aliases: 10_000,
            max_anchors: 10_000,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 200_000,
            max_replay_stack_depth: 16,
        },
    }
}

/// Read every document of an input. Empty documents are counted (for [`Document::index`])
/// but not returned.
pub fn parse(text: &str, format: Format) -> Result<Vec<Document>, ParseError> {
    Ok(parse_with_lines(text, format)?
        .into_iter()
        .map(|(document, _)| document)
        .collect())
}

/// [`parse`], with each document's [`Lines`] when the reading recorded them (the common YAML
/// case); `None` means lines must be found with [`locate_many`].
pub fn parse_with_lines(
    text: &str,
    format: Format,
) -> Result<Vec<(Document, Option<Lines>)>, ParseError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(ParseError::whole(format!(
            "is {} bytes; inputs are limited to {MAX_INPUT_BYTES} bytes",
            text.len()
        )));
    }
    let without_lines =
        |documents: Vec<Document>| documents.into_iter().map(|d| (d, None)).collect();
    match format {
        Format::Json => parse_json(text).map(without_lines),
        Format::Yaml => match fast::parse(text) {
            Some(documents) => Ok(documents.into_iter().map(|(d, l)| (d, Some(l))).collect()),
            None => parse_yaml_with_deserializer(text).map(without_lines),
        },
    }
}

fn parse_json(text: &str) -> Result<Vec<Document>, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut documents = Vec::new();
    // Lines are counted from where the previous document started, so a stream of many
    // documents is read in one pass over its text.
    let (mut counted_to, mut line) = (0usize, 1u64);
    loop {
        // The offset after the previous value; skip whitespace to find where this one starts.
        let before = stream.byte_offset();
        let start = before
            + text
                .get(before..)
                .map_or(0, |rest| rest.len() - rest.trim_start().len());
        let start = start.min(text.len());
        line += newlines(&text.as_bytes()[counted_to.min(start)..start]);
        counted_to = start;
        match stream.next() {
            None => break,
            Some(Ok(value)) => {
                if documents.len() >= MAX_DOCUMENTS {
                    return Err(ParseError::whole(format!(
                        "holds more than {MAX_DOCUMENTS} documents"
                    )));
                }
                documents.push(Document {
                    index: documents.len() + 1,
                    line,
                    value,
                });
            }
            Some(Err(e)) => {
                return Err(ParseError {
                    line: Some(e.line() as u64),
                    column: Some(e.column() as u64),
                    message: e
                        .to_string()
                        .split(" at line ")
                        .next()
                        .unwrap_or("")
                        .to_owned(),
                });
            }
        }
    }
    Ok(documents)
}

fn newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

fn yaml_error(e: serde_saphyr::Error) -> ParseError {
    let location = e.location();
    ParseError {
        line: location.map(|l| l.line()).filter(|&l| l > 0),
        column: location.map(|l| l.column()).filter(|&c| c > 0),
        message: e.without_snippet().to_string(),
    }
}

/// The reference reading of YAML: serde-saphyr's deserializer, under the input budget.
fn parse_yaml_with_deserializer(text: &str) -> Result<Vec<Document>, ParseError> {
    let roots: Vec<Spanned<Value>> =
        serde_saphyr::from_multiple_with_options(text, yaml_options()).map_err(yaml_error)?;
    let markers = DocumentMarkers::new(text);
    Ok(roots
        .into_iter()
        .map(|root| {
            let line = root.referenced.line().max(1);
            Document {
                index: markers.index_of(line),
                line,
                value: root.value,
            }
        })
        .collect())
}

/// The common case, read straight from serde-saphyr's event parser.
///
/// Most manifests use a small part of YAML: block and flow collections, plain and quoted
/// scalars, comments. For those, building the JSON value from parser events is about twice as
/// fast as serde's generic deserializer, and it is what makes `check` keep up with large
/// repositories. Anything outside that part (anchors, aliases, merge keys, tags, complex or
/// duplicate keys, budget limits, parse errors) makes [`parse`] return `None`, and the input
/// is read again by serde-saphyr's deserializer, which gives the verdict and the error
/// message. Plain scalars that could be something other than a string are typed by
/// serde-saphyr itself, so a value means the same on both paths; a differential test over
/// the upstream Pod Security corpus and random documents holds the two paths equal.
mod fast {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use serde_json::{Map, Value};
    use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle};

    use super::{Document, DocumentMarkers, Lines, MAX_DEPTH, MAX_DOCUMENTS};

    /// Matches the node budget of the deserializer path.
    const MAX_NODES: usize = 20_000_000;
    /// Typed plain scalars remembered per thread (ports, replica counts, booleans repeat).
    const TYPED_CACHE_LIMIT: usize = 4096;

    thread_local! {
        static TYPED: RefCell<HashMap<String, Value>> = RefCell::new(HashMap::new());
    }

    enum Building {
        Sequence(Vec<Value>),
        Mapping(Map<String, Value>, Option<String>),
    }

    /// An open collection: what is being built, the hash of its path, and the line of the
    /// pending mapping key.
    struct Open {
        building: Building,
        hash: u64,
        key_line: u64,
    }

    /// The path hash and report line of the node starting now under `parent`.
    fn child(parent: Option<&Open>, line: u64) -> (u64, u64) {
        match parent {
            None => (super::ROOT_HASH, line),
            Some(Open {
                building: Building::Sequence(items),
                hash,
                ..
            }) => (super::hash_index(*hash, items.len()), line),
            Some(Open {
                building: Building::Mapping(_, key),
                hash,
                key_line,
            }) => (
                super::hash_key(*hash, key.as_deref().unwrap_or_default()),
                *key_line,
            ),
        }
    }

    /// What a plain scalar means, or `None` when only the deserializer path can tell.
    fn plain(text: &str) -> Option<Value> {
        if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
            return Some(Value::Null);
        }
        let bytes = text.as_bytes();
        let Some(&first) = bytes.first() else {
            return Some(Value::Null);
        };
        let boolean_word = text.len() <= 5
            && ["y", "yes", "true", "on", "n", "no", "false", "off"]
                .iter()
                .any(|word| text.eq_ignore_ascii_case(word));
        // Only these characters occur in YAML booleans, integers and floats; anything else
        // is a string on both paths.
        let numeric_charset = bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.' | b'_' | b':'));
        let numeric_start = first.is_ascii_digit()
            || (matches!(first, b'+' | b'-' | b'.')
                && bytes
                    .get(1)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || (*b == b'.' && first != b'.')));
        if !(boolean_word || (numeric_charset && numeric_start)) {
            return Some(Value::String(text.to_owned()));
        }
        if let Some(v) = TYPED.with(|cache| cache.borrow().get(text).cloned()) {
            return Some(v);
        }
        // Typed by serde-saphyr, exactly as its deserializer types a plain scalar.
        let typed: Value = serde_saphyr::from_str(text).ok()?;
        if typed.is_array() || typed.is_object() {
            return None;
        }
        TYPED.with(|cache| {
            let mut cache = cache.borrow_mut();
            if cache.len() >= TYPED_CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(text.to_owned(), typed.clone());
        });
        Some(typed)
    }

    /// Key text of a scalar used as a mapping key, `None` for keys only the deserializer
    /// path reads the same way (merge keys, null-like and typed-looking plain keys).
    fn key(text: &str, style: ScalarStyle) -> Option<String> {
        if style != ScalarStyle::Plain {
            return Some(text.to_owned());
        }
        match plain(text)? {
            Value::String(s) if s != "<<" => Some(s),
            _ => None,
        }
    }

    pub(super) fn parse(text: &str) -> Option<Vec<(Document, Lines)>> {
        let mut reader = Reader::new(text);
        for item in Parser::new_from_str(text) {
            let (event, span) = item.ok()?;
            let line = span.start.line() as u64;
            let is_sequence = matches!(event, Event::SequenceStart(..));
            let value = match event {
                Event::Scalar(scalar, style, anchor, tag) => {
                    if anchor != 0 || tag.is_some() {
                        return None;
                    }
                    match reader.scalar(scalar, style, line)? {
                        Some(value) => value,
                        None => continue,
                    }
                }
                Event::SequenceStart(_, anchor, tag) | Event::MappingStart(_, anchor, tag) => {
                    if anchor != 0 || tag.is_some() {
                        return None;
                    }
                    reader.open(is_sequence, line)?;
                    continue;
                }
                Event::SequenceEnd => match reader.stack.pop()?.building {
                    Building::Sequence(items) => Value::Array(items),
                    Building::Mapping(..) => return None,
                },
                Event::MappingEnd => match reader.stack.pop()?.building {
                    Building::Mapping(map, None) => Value::Object(map),
                    _ => return None,
                },
                Event::Alias(..) => return None,
                _ => continue,
            };
            reader.attach(value)?;
        }
        reader.stack.is_empty().then_some(reader.documents)
    }

    /// The state of one fast read: `None` from any step means "leave it to the deserializer".
    struct Reader<'t> {
        text: &'t str,
        stack: Vec<Open>,
        root_line: u64,
        nodes: usize,
        documents: Vec<(Document, Lines)>,
        lines: Lines,
        markers: Option<DocumentMarkers>,
    }

    impl<'t> Reader<'t> {
        fn new(text: &'t str) -> Self {
            Self {
                text,
                stack: Vec::new(),
                root_line: 0,
                nodes: 0,
                documents: Vec::new(),
                lines: Lines::default(),
                markers: None,
            }
        }

        /// A scalar: a mapping's pending key (`Some(None)`), or a value to attach.
        fn scalar(
            &mut self,
            scalar: std::borrow::Cow<'_, str>,
            style: ScalarStyle,
            line: u64,
        ) -> Option<Option<Value>> {
            self.nodes += 1;
            if let Some(Open {
                building: Building::Mapping(_, pending @ None),
                key_line,
                ..
            }) = self.stack.last_mut()
            {
                *pending = Some(key(&scalar, style)?);
                *key_line = line;
                return Some(None);
            }
            if self.stack.is_empty() {
                self.root_line = line;
            }
            let (hash, at) = child(self.stack.last(), line);
            self.lines.record(hash, at);
            let value = if style == ScalarStyle::Plain {
                plain(&scalar)?
            } else {
                Value::String(scalar.into_owned())
            };
            Some(Some(value))
        }

        /// A sequence or mapping starts, within the depth and node budgets.
        fn open(&mut self, is_sequence: bool, line: u64) -> Option<()> {
            if matches!(
                self.stack.last(),
                Some(Open {
                    building: Building::Mapping(_, None),
                    ..
                })
            ) {
                return None; // A collection as a key.
            }
            self.nodes += 1;
            if self.stack.len() >= MAX_DEPTH || self.nodes > MAX_NODES {
                return None;
            }
            if self.stack.is_empty() {
                self.root_line = line;
            }
            let (hash, at) = child(self.stack.last(), line);
            self.lines.record(hash, at);
            self.stack.push(Open {
                building: if is_sequence {
                    Building::Sequence(Vec::new())
                } else {
                    Building::Mapping(Map::new(), None)
                },
                hash,
                key_line: line,
            });
            Some(())
        }

        /// A finished value goes into its parent, or is a document of its own.
        fn attach(&mut self, value: Value) -> Option<()> {
            match self.stack.last_mut().map(|open| &mut open.building) {
                Some(Building::Sequence(items)) => items.push(value),
                Some(Building::Mapping(map, pending)) => {
                    let key = pending.take()?;
                    if map.insert(key, value).is_some() {
                        return None; // Duplicate key: the deserializer path reports it.
                    }
                }
                None => {
                    let document_lines = std::mem::take(&mut self.lines);
                    // A document root. Null documents are skipped, as serde-saphyr does.
                    if value.is_null() {
                        return Some(());
                    }
                    if self.documents.len() >= MAX_DOCUMENTS {
                        return None;
                    }
                    let line = self.root_line.max(1);
                    let text = self.text;
                    let index = self
                        .markers
                        .get_or_insert_with(|| DocumentMarkers::new(text))
                        .index_of(line);
                    self.documents
                        .push((Document { index, line, value }, document_lines));
                }
            }
            Some(())
        }
    }
}

/// The line of every node of one document, recorded while it is parsed, so that findings are
/// located without reading the text a second time.
///
/// Nodes are keyed by a 64-bit hash of their field path (the same segments findings name), so
/// recording costs one hash and one push per node, and a clean document never pays for more.
/// The first lookup builds a hash index over the recorded nodes (first occurrence wins), so a
/// document with thousands of findings costs one lookup per path segment, not a scan of every
/// node per finding. A hash collision can only misplace a line number in a report, never
/// change a verdict.
#[derive(Debug, Clone, Default)]
pub struct Lines {
    nodes: Vec<(u64, u32)>,
    index: std::cell::OnceCell<PathIndex>,
}

impl PartialEq for Lines {
    fn eq(&self, other: &Self) -> bool {
        self.nodes == other.nodes
    }
}

impl Eq for Lines {}

/// Path hashes are already well mixed: hashing them again would only cost time.
#[derive(Debug, Clone, Copy, Default)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Path hash → line.
type PathIndex = std::collections::HashMap<u64, u32, std::hash::BuildHasherDefault<PassThrough>>;

const ROOT_HASH: u64 = 0x9e37_79b9_7f4a_7c15;

fn hash_key(parent: u64, key: &str) -> u64 {
    let mut h = parent ^ 0x4b;
    for b in key.bytes() {
        h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    h.rotate_left(7).wrapping_mul(0x2545_f491_4f6c_dd1d)
}

fn hash_index(parent: u64, index: usize) -> u64 {
    ((parent ^ 0x49).rotate_left(5) ^ index as u64)
        .wrapping_mul(0x517c_c1b7_2722_0a95)
        .rotate_left(11)
}

fn line_u32(line: u64) -> u32 {
    u32::try_from(line).unwrap_or(u32::MAX)
}

/// The line of `path` in `index`: of the deepest part of it that exists, or `document_line`.
fn locate_in(index: &PathIndex, document_line: u64, path: &str) -> u64 {
    let mut hash = ROOT_HASH;
    let mut best = document_line;
    for segment in segments(path) {
        hash = match segment {
            Segment::Key(k) => hash_key(hash, k),
            Segment::Index(i) => hash_index(hash, i),
        };
        match index.get(&hash) {
            Some(&line) => best = u64::from(line),
            None => break,
        }
    }
    best
}

impl Lines {
    fn record(&mut self, hash: u64, line: u64) {
        self.nodes.push((hash, line_u32(line)));
    }

    fn index(&self) -> &PathIndex {
        self.index.get_or_init(|| {
            let mut index =
                PathIndex::with_capacity_and_hasher(self.nodes.len(), Default::default());
            for &(hash, line) in &self.nodes {
                index.entry(hash).or_insert(line);
            }
            index
        })
    }

    /// The line of `path`: of the deepest part of it that exists (a missing field is reported
    /// where its parent is), or `document_line` when not even its first segment exists —
    /// the same answer [`locate`] gives by re-reading the text.
    pub fn locate(&self, document_line: u64, path: &str) -> u64 {
        locate_in(self.index(), document_line, path)
    }
}

/// Where `---` document markers are, to number documents the way a reader of the file would.
struct DocumentMarkers {
    /// 1-based lines of `---` markers.
    lines: Vec<u64>,
    /// Whether content precedes the first marker (an implicit first document).
    implicit_first: bool,
}

impl DocumentMarkers {
    fn new(text: &str) -> Self {
        let mut lines = Vec::new();
        let mut implicit_first = false;
        for (i, line) in text.lines().enumerate() {
            let is_marker = line
                .strip_prefix("---")
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']));
            if is_marker {
                lines.push(i as u64 + 1);
            } else if lines.is_empty() {
                let trimmed = line.trim_start_matches('\u{feff}').trim();
                if !(trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('%')) {
                    implicit_first = true;
                }
            }
        }
        Self {
            lines,
            implicit_first,
        }
    }

    /// The 1-based index of the document whose content starts on `line`.
    fn index_of(&self, line: u64) -> usize {
        // Markers are in line order: a binary search keeps many-document inputs linear.
        let markers_before = self.lines.partition_point(|&m| m <= line);
        (markers_before + usize::from(self.implicit_first)).max(1)
    }
}

/// A path segment of a finding's field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Split `spec.containers[0].securityContext` or `metadata.labels[app.kubernetes.io/name]`.
fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').unwrap_or(after.len());
            let inner = &after[..end];
            out.push(match inner.parse() {
                Ok(i) => Segment::Index(i),
                Err(_) => Segment::Key(inner),
            });
            rest = after.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            if end > 0 {
                out.push(Segment::Key(&rest[..end]));
            }
            rest = &rest[end..];
        }
        rest = rest.strip_prefix('.').unwrap_or(rest);
    }
    out
}

/// Where the walk over a document's events is.
enum Frame {
    /// In a mapping whose path hashes to `hash`; `key` is the key whose value comes next
    /// (`None`: a key comes next).
    Mapping {
        hash: u64,
        key: Option<String>,
        key_line: u64,
    },
    /// In a sequence whose path hashes to `hash`, at element `index`.
    Sequence { hash: u64, index: usize },
    /// Inside a collection used as a mapping key, which no field path can name.
    ComplexKey { depth: usize },
}

/// A finished value: the enclosing mapping expects a key again, the sequence moves on.
fn value_done(stack: &mut [Frame]) {
    match stack.last_mut() {
        Some(Frame::Mapping { key, .. }) => *key = None,
        Some(Frame::Sequence { index, .. }) => *index += 1,
        _ => {}
    }
}

/// The lines of `paths` in the document of `text` whose content starts on `document_line`:
/// for each path, the line of the deepest part of it that exists (a missing field is
/// reported where its parent is), or the document's line.
pub fn locate_all(text: &str, document_line: u64, paths: &[&str]) -> Vec<u64> {
    let findings: Vec<(u64, &str)> = paths.iter().map(|p| (document_line, *p)).collect();
    locate_many(text, &findings)
}

/// [`locate_all`] for findings in any documents of `text`, as `(document line, path)`, in
/// one walk over the text. The walk records the line of every node of the documents that
/// have findings under the hash of its path (as [`Lines`] does while parsing; a repeated
/// path keeps its last line), then each finding is looked up one segment at a time, so the
/// cost is linear in the text plus the findings' paths. The walk keeps its own stack, so
/// nesting costs no recursion.
pub fn locate_many(text: &str, findings: &[(u64, &str)]) -> Vec<u64> {
    use serde_saphyr::granit_parser::{Event, Parser};

    let wanted: std::collections::BTreeSet<u64> = findings.iter().map(|(line, _)| *line).collect();
    let last_document = wanted.last().copied().unwrap_or(0);
    // Document line → path hash → line. Documents starting on the same line share one index.
    let mut indexes: std::collections::BTreeMap<u64, PathIndex> = Default::default();
    let mut current: Option<u64> = None;
    let mut stack: Vec<Frame> = Vec::new();
    let mut events = 0usize;
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else { break };
        events += 1;
        if events > 40_000_000 || stack.len() > MAX_DEPTH * 2 {
            break;
        }
        let line = span.start.line() as u64;
        let is_start = matches!(event, Event::SequenceStart(..) | Event::MappingStart(..));
        match event {
            Event::Scalar(..)
            | Event::Alias(..)
            | Event::SequenceStart(..)
            | Event::MappingStart(..) => {
                match stack.last_mut() {
                    Some(Frame::ComplexKey { depth }) => {
                        if is_start {
                            *depth += 1;
                        }
                        continue;
                    }
                    Some(Frame::Mapping {
                        key: key @ None,
                        key_line,
                        ..
                    }) => {
                        *key_line = line;
                        *key = Some(match &event {
                            Event::Scalar(text, ..) => text.to_string(),
                            // Not nameable by a field path.
                            _ => "\u{0}".to_owned(),
                        });
                        if is_start {
                            stack.push(Frame::ComplexKey { depth: 1 });
                        }
                        continue;
                    }
                    _ => {}
                }
                // The node's path hash and the line it is reported at.
                let (hash, at) = match stack.last() {
                    None => {
                        // A document's root: record it if it has findings.
                        if line > last_document {
                            break;
                        }
                        current = wanted.contains(&line).then_some(line);
                        (ROOT_HASH, line)
                    }
                    Some(Frame::Mapping {
                        hash,
                        key,
                        key_line,
                    }) => (
                        hash_key(*hash, key.as_deref().unwrap_or_default()),
                        *key_line,
                    ),
                    Some(Frame::Sequence { hash, index }) => (hash_index(*hash, *index), line),
                    Some(Frame::ComplexKey { .. }) => continue,
                };
                if let Some(document) = current {
                    indexes
                        .entry(document)
                        .or_default()
                        .insert(hash, line_u32(at.max(1)));
                }
                match event {
                    Event::SequenceStart(..) => stack.push(Frame::Sequence { hash, index: 0 }),
                    Event::MappingStart(..) => stack.push(Frame::Mapping {
                        hash,
                        key: None,
                        key_line: line,
                    }),
                    _ => value_done(&mut stack),
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(Frame::ComplexKey { depth }) = stack.last_mut() {
                    *depth -= 1;
                    if *depth == 0 {
                        stack.pop();
                    }
                    continue;
                }
                stack.pop();
                value_done(&mut stack);
            }
            _ => {}
        }
    }
    findings
        .iter()
        .map(|&(document, path)| match indexes.get(&document) {
            Some(index) => locate_in(index, document, path),
            None => document,
        })
        .collect()
}

/// The line of one path; see [`locate_all`].
pub fn locate(text: &str, document_line: u64, path: &str) -> u64 {
    locate_all(text, document_line, &[path])
        .first()
        .copied()
        .unwrap_or(document_line)
}

/// The objects a document holds: itself, or the items of a `kind: List` (as `kubectl get -o
/// yaml` prints several objects), each with the path prefix of the item.
pub fn objects(document: &Value) -> Vec<(String, &Value)> {
    let is_list = document
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k == "List")
        && document
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v == "v1");
    match document.get("items").and_then(Value::as_array) {
        Some(items) if is_list => items
            .iter()
            .enumerate()
            .map(|(i, item)| (format!("items[{i}]"), item))
            .collect(),
        _ => vec![(String::new(), document)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_numbered_and_positioned_like_the_file() {
        let text = "# leading comment\napiVersion: v1\nkind: A\n---\n---\n# c\napiVersion: v1\nkind: B\n--- {kind: C}\n";
        let docs = parse(text, Format::Yaml).expect("valid");
        let got: Vec<(usize, u64, &str)> = docs
            .iter()
            .map(|d| (d.index, d.line, d.value["kind"].as_str().unwrap_or("")))
            .collect();
        assert_eq!(got, vec![(1, 2, "A"), (3, 7, "B"), (4, 9, "C")]);
    }

    #[test]
    fn leading_marker_starts_the_first_document() {
        let docs = parse("---\nkind: A\n---\nkind: B\n", Format::Yaml).expect("valid");
        let got: Vec<(usize, u64)> = docs.iter().map(|d| (d.index, d.line)).collect();
        assert_eq!(got, vec![(1, 2), (2, 4)]);
    }

    #[test]
    fn json_streams_carry_lines() {
        let docs = parse("{\"kind\": \"A\"}\n\n{\"kind\":\n \"B\"}", Format::Json).expect("valid");
        let got: Vec<(usize, u64)> = docs.iter().map(|d| (d.index, d.line)).collect();
        assert_eq!(got, vec![(1, 1), (2, 3)]);
        let err = parse("{\"kind\": }", Format::Json).expect_err("invalid");
        assert_eq!(err.line, Some(1));
    }

    #[test]
    fn malformed_yaml_reports_its_position() {
        let err = parse("kind: A\nspec:\n  x: [1, 2\n", Format::Yaml).expect_err("invalid");
        assert!(err.line.is_some(), "{err}");
        let err = parse("a: 1\na: 2\n", Format::Yaml).expect_err("duplicate keys");
        assert_eq!(err.line, Some(2), "{err}");
    }

    #[test]
    fn bombs_and_deep_nesting_are_refused() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (prev, next) in ["a", "b", "c", "d", "e", "f", "g", "h"]
            .windows(2)
            .map(|w| (w[0], w[1]))
        {
            bomb.push_str(&format!(
                "{next}: &{next} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        assert!(parse(&bomb, Format::Yaml).is_err(), "billion laughs");
        let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse(&deep, Format::Yaml).is_err(), "deep flow nesting");
        assert!(parse(&deep, Format::Json).is_err(), "deep JSON nesting");
        let mut block = String::new();
        for depth in 0..500 {
            block.push_str(&" ".repeat(depth));
            block.push_str("a:\n");
        }
        assert!(parse(&block, Format::Yaml).is_err(), "deep block nesting");
    }

    #[test]
    fn paths_are_located_at_their_lines() {
        let text = "apiVersion: v1\nkind: List\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  labels:\n    app.kubernetes.io/name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        image: x\n      - name: b\n        securityContext:\n          privileged: true\n";
        let docs = parse(text, Format::Yaml).expect("valid");
        let line = docs[1].line;
        assert_eq!(
            locate(
                text,
                line,
                "spec.template.spec.containers[1].securityContext.privileged"
            ),
            17
        );
        assert_eq!(locate(text, line, "spec.template.spec.containers[1]"), 15);
        // Missing fields point at the deepest parent that exists.
        assert_eq!(
            locate(
                text,
                line,
                "spec.template.spec.containers[0].securityContext.runAsNonRoot"
            ),
            13
        );
        assert_eq!(
            locate(text, line, "metadata.labels[app.kubernetes.io/name]"),
            8
        );
        // Deep documents are walked without recursion.
        let mut deep = String::new();
        for depth in 0..60 {
            deep.push_str(&" ".repeat(depth));
            deep.push_str("a:\n");
        }
        assert_eq!(locate(&deep, 1, "a.a.a"), 3);
        assert_eq!(
            locate_all(text, line, &["spec.template", "nowhere"]),
            vec![10, line]
        );
    }

    /// Every path of every node of `document`, located from the recorded lines and by a
    /// second positioned read, must agree.
    fn assert_lines_agree(text: &str, document: &Document, lines: &Lines) {
        fn paths(value: &Value, prefix: &str, out: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    for (k, v) in map {
                        let p = if k.contains(['.', '[', ']']) {
                            format!("{prefix}[{k}]")
                        } else if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        out.push(p.clone());
                        paths(v, &p, out);
                    }
                }
                Value::Array(items) => {
                    for (i, v) in items.iter().enumerate() {
                        let p = format!("{prefix}[{i}]");
                        out.push(p.clone());
                        paths(v, &p, out);
                    }
                }
                _ => {}
            }
        }
        let mut all = Vec::new();
        paths(&document.value, "", &mut all);
        all.push("missing.field".to_owned());
        let wanted: Vec<(u64, &str)> = all.iter().map(|p| (document.line, p.as_str())).collect();
        let reread = locate_many(text, &wanted);
        for (path, want) in all.iter().zip(reread) {
            assert_eq!(
                lines.locate(document.line, path),
                want,
                "{path} in {text:?}"
            );
        }
    }

    /// Both readers on one text: the fast one, when it accepts the text, must agree exactly.
    fn assert_paths_agree(text: &str) -> bool {
        match fast::parse(text) {
            Some(fast) => {
                let reference = parse_yaml_with_deserializer(text);
                for (document, lines) in &fast {
                    assert_lines_agree(text, document, lines);
                }
                let fast: Vec<Document> = fast.into_iter().map(|(d, _)| d).collect();
                assert_eq!(
                    Ok(fast),
                    reference,
                    "fast and reference readers differ on {text:?}"
                );
                true
            }
            None => false,
        }
    }

    #[test]
    fn fast_reader_equals_the_deserializer_on_the_upstream_corpus() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/pss");
        let mut stack = vec![root];
        let (mut files, mut fast) = (0, 0);
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("fixture directory") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "yaml") {
                    let text = std::fs::read_to_string(&path).expect("fixture");
                    files += 1;
                    fast += usize::from(assert_paths_agree(&text));
                }
            }
        }
        assert!(files > 4_000, "corpus missing: {files} files");
        assert!(
            fast * 10 >= files * 9,
            "fast path took only {fast} of {files}"
        );
    }

    #[test]
    fn fast_reader_hands_unusual_yaml_to_the_deserializer() {
        for text in [
            "a: &x 1\nb: *x\n",
            "base: &b {x: 1}\nother:\n  <<: *b\n",
            "a: !!str 123\n",
            "? [a]\n: b\n",
            "a: 1\na: 2\n",
            "1: one\n",
            "true: yes\n",
            // serde-saphyr refuses non-finite floats in untyped values: its error stands.
            "a: .inf\n",
            // Parse errors are reported by the deserializer path.
            "a: -\n",
        ] {
            assert!(fast::parse(text).is_none(), "{text:?}");
        }
        for text in [
            "a: 1\nb: -2\nc: 0x1F\nd: 1.5e3\nf: yes\ng: No\nh: ~\ni: null\nj: ''\nk: \"1\"\n",
            "b: ---x\nc: .\nd: +\ne: 1:20\nf: 1_000\ng: 0o17\nh: 012\nk: inf\n",
            "---\n---\n# c\nkind: A\n--- |\n  text\n...\n",
            "list: [1, two, {x: y}, [ ]]\nempty: {}\nfolded: >\n  a\n  b\nquoted: 'it''s'\n",
            "\u{feff}kind: Pod\n",
        ] {
            assert!(assert_paths_agree(text), "fast path should take {text:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 256,
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        #[test]
        fn fast_reader_agrees_on_random_documents(value in json(), flow in proptest::prelude::any::<bool>()) {
            let text = if flow {
                serde_json::to_string(&value).unwrap_or_default()
            } else {
                serde_saphyr::to_string(&value).unwrap_or_default()
            };
            assert_paths_agree(&text);
            assert_paths_agree(&format!("---\n{text}\n---\n{text}"));
        }

        #[test]
        fn fast_reader_agrees_on_random_text(text in "(?s)[a-z0-9:\\- \\n\\[\\]{},.'\"#&*!|>~+_]{0,120}") {
            assert_paths_agree(&text);
        }
    }

    fn json() -> impl proptest::prelude::Strategy<Value = Value> {
        use proptest::prelude::*;
        let scalar = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "[ -~]{0,12}".prop_map(Value::from),
            prop::sample::select(vec![
                "yes", "No", "on", "~", "null", "0x10", "-", "1e3", ".5", "012", "a: b", "- x",
                "#c", "---", "1_0"
            ])
            .prop_map(Value::from),
        ];
        scalar.prop_recursive(5, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z][a-z0-9./-]{0,8}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn lists_are_expanded() {
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [{"kind": "A"}, {"kind": "B"}]});
        let got: Vec<String> = objects(&list).into_iter().map(|(p, _)| p).collect();
        assert_eq!(got, vec!["items[0]", "items[1]"]);
        let single = serde_json::json!({"kind": "Pod"});
        assert_eq!(objects(&single).len(), 1);
    }
}
