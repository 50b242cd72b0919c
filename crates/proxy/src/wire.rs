//! The index's answers in the API server's wire formats.
//!
//! Clients ask for namespaces in three shapes and read only the one they asked for: plain
//! objects (`-o yaml`, informers), `meta.k8s.io` Tables (every `kubectl get` and `get -w`,
//! whose columns and age the server computes), and `PartialObjectMetadata` (metadata-only
//! informers, kube-rs `metadata_watcher`). Each is rendered here exactly as the API server
//! renders it for namespaces (Name, Status, Age; the age as `kubectl` prints durations), so a
//! tool cannot tell the proxy's answer from the API server's.

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use crate::{
    index::{ListPage, NamespaceEntry, WatchEvent},
    route::IncludeObject,
};

/// The shape a client asked for (`Accept`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `v1` Namespace objects.
    Object,
    /// `meta.k8s.io` Table of the given version (`v1`, `v1beta1`).
    Table(&'static str),
    /// `meta.k8s.io/v1` PartialObjectMetadata.
    Metadata,
}

/// The first shape of `accept` the proxy can produce, in the client's order; plain objects
/// when it names none (as the API server falls back to JSON).
pub fn format(accept: Option<&str>) -> Format {
    for range in accept.unwrap_or("").split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        if media != "application/json" && media != "*/*" {
            continue;
        }
        let (mut as_, mut g, mut v) = (None, None, None);
        for param in parts {
            match param.split_once('=') {
                Some(("as", x)) => as_ = Some(x),
                Some(("g", x)) => g = Some(x),
                Some(("v", x)) => v = Some(x),
                _ => {}
            }
        }
        match (as_, g, v) {
            (None, _, _) => return Format::Object,
            (Some("Table"), Some("meta.k8s.io"), Some("v1")) => return Format::Table("v1"),
            (Some("Table"), Some("meta.k8s.io"), Some("v1beta1")) => {
                return Format::Table("v1beta1");
            }
            (
                Some("PartialObjectMetadata" | "PartialObjectMetadataList"),
                Some("meta.k8s.io"),
                Some("v1"),
            ) => return Format::Metadata,
            _ => {}
        }
    }
    Format::Object
}

/// A duration as `kubectl` prints ages (`k8s.io/apimachinery/pkg/util/duration.HumanDuration`).
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn age(entry: &NamespaceEntry, now: Timestamp) -> String {
    entry
        .created
        .as_deref()
        .and_then(|c| c.parse::<Timestamp>().ok())
        .map_or_else(
            || "<unknown>".to_owned(),
            |created| human_duration(now.as_second() - created.as_second()),
        )
}

fn partial_metadata(entry: &NamespaceEntry) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": entry.object().get_mut("metadata").map_or_else(|| json!({}), Value::take),
    })
}

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// How to render: the format, what a Table row carries, and the time ages are counted to.
#[derive(Debug, Clone, Copy)]
pub struct Render {
    /// The shape.
    pub format: Format,
    /// What Table rows carry.
    pub include: IncludeObject,
    /// Now, for ages.
    pub now: Timestamp,
}

impl Render {
    fn table(&self, version: &str, entries: &[&NamespaceEntry], metadata: Value) -> Value {
        let rows: Vec<Value> = entries
            .iter()
            .map(|e| {
                let mut row = json!({"cells": [e.name, e.phase, age(e, self.now)]});
                match self.include {
                    IncludeObject::None => {}
                    IncludeObject::Metadata => row["object"] = partial_metadata(e),
                    IncludeObject::Object => row["object"] = e.object(),
                }
                row
            })
            .collect();
        json!({
            "kind": "Table",
            "apiVersion": format!("meta.k8s.io/{version}"),
            "metadata": metadata,
            "columnDefinitions": [
                {"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION, "priority": 0},
                {"name": "Status", "type": "string", "format": "", "description": "The status of the namespace", "priority": 0},
                {"name": "Age", "type": "string", "format": "", "description": AGE_DESCRIPTION, "priority": 0},
            ],
            "rows": rows,
        })
    }

    /// One namespace (`GET /api/v1/namespaces/{name}`), or a watch event's object.
    pub fn one(&self, entry: &NamespaceEntry) -> Value {
        match self.format {
            Format::Object => entry.object(),
            Format::Metadata => partial_metadata(entry),
            Format::Table(version) => self.table(
                version,
                &[entry],
                json!({"resourceVersion": entry.resource_version.to_string()}),
            ),
        }
    }

    /// A page of a list.
    pub fn list(&self, page: &ListPage) -> Value {
        let mut metadata = json!({"resourceVersion": page.resource_version.to_string()});
        if let Some(token) = &page.continue_token {
            metadata["continue"] = json!(token);
        }
        if let Some(remaining) = page.remaining {
            metadata["remainingItemCount"] = json!(remaining);
        }
        match self.format {
            Format::Table(version) => {
                let entries: Vec<&NamespaceEntry> = page.items.iter().map(|e| &**e).collect();
                self.table(version, &entries, metadata)
            }
            Format::Object => json!({
                "kind": "NamespaceList",
                "apiVersion": "v1",
                "metadata": metadata,
                "items": page.items.iter().map(|e| e.object()).collect::<Vec<_>>(),
            }),
            Format::Metadata => json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata,
                "items": page.items.iter().map(|e| partial_metadata(e)).collect::<Vec<_>>(),
            }),
        }
    }

    /// A watch event line (without the newline).
    pub fn event(&self, event: &WatchEvent) -> Value {
        json!({"type": event.kind.as_str(), "object": self.one(&event.entry)})
    }
}

/// A `BOOKMARK` event at `resource_version`; `initial_events_end` marks the end of the
/// initial events of a `sendInitialEvents` watch.
pub fn bookmark(resource_version: u64, initial_events_end: bool) -> Value {
    let mut metadata = json!({"resourceVersion": resource_version.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"type": "BOOKMARK", "object": {"kind": "Namespace", "apiVersion": "v1", "metadata": metadata}})
}

/// An `ERROR` event carrying a Status (how a watch reports `410 Expired`).
pub fn error_event(status: Value) -> Value {
    json!({"type": "ERROR", "object": status})
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::index::{EventType, NamespaceEntry};

    const KUBECTL_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

    fn entry() -> NamespaceEntry {
        // The API server's `default` namespace as recorded from `kubectl get ns default -v=9`.
        NamespaceEntry::from_object(
            json!({"kind":"Namespace","apiVersion":"v1","metadata":{"name":"shop","uid":"3d9260e3-0f82-45a6-a2ac-d728b796b3bf","resourceVersion":"23","creationTimestamp":"2026-11-30T20:54:14Z","labels":{"kubernetes.io/metadata.name":"shop","tenantry.dev/tenant":"shop"}},"spec":{"finalizers":["kubernetes"]},"status":{"phase":"Active"}}),
            "tenantry.dev/tenant",
        )
        .unwrap()
    }

    #[test]
    fn kubectl_gets_a_table_and_tools_get_what_they_asked_for() {
        assert_eq!(format(Some(KUBECTL_ACCEPT)), Format::Table("v1"));
        assert_eq!(format(Some("application/json")), Format::Object);
        assert_eq!(format(None), Format::Object);
        assert_eq!(
            format(Some(
                "application/vnd.kubernetes.protobuf, application/json"
            )),
            Format::Object
        );
        assert_eq!(
            format(Some(
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            )),
            Format::Metadata
        );
    }

    #[test]
    fn a_table_row_reads_like_the_api_servers() {
        let render = Render {
            format: Format::Table("v1"),
            include: IncludeObject::Metadata,
            now: "2026-12-01T01:10:27Z".parse().unwrap(),
        };
        let table = render.one(&entry());
        assert_eq!(
            table["rows"][0]["cells"],
            json!(["shop", "Active", "4h16m"])
        );
        assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(table["metadata"]["resourceVersion"], "23");
        assert_eq!(
            table["columnDefinitions"][1]["description"],
            "The status of the namespace"
        );
        let event = render.event(&WatchEvent {
            kind: EventType::Added,
            entry: Arc::new(entry()),
        });
        assert_eq!(event["type"], "ADDED");
        assert_eq!(event["object"]["kind"], "Table");
    }

    #[test]
    fn ages_print_as_kubectl_prints_them() {
        for (seconds, text) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60, "3h1m"),
            (9 * 3600, "9h"),
            (50 * 3600, "2d2h"),
            (10 * 86400, "10d"),
            (800 * 86400, "2y70d"),
            (9 * 365 * 86400, "9y"),
        ] {
            assert_eq!(human_duration(seconds), text, "{seconds}");
        }
    }
}
