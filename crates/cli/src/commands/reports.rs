//! Report parts more than one command prints: what was written to the GitOps tree, and how
//! a tenant's layers went on the cluster.

use std::io::{self, Write};

use serde::Serialize;
use tenantry_cluster::{
    MissingKind,
    ops::{self, Action, DeleteReport, LayerReport, LayerStatus, TenantApply},
};
use tenantry_gitops::{FileChange, TenantReport};

use crate::output::{display, list_or_none, plural};

/// One file written or removed.
#[derive(Debug, Serialize)]
pub struct FileChangeReport {
    /// Relative to the repository root.
    pub path: String,
    /// `created`, `updated` or `removed`.
    pub change: String,
}

/// What one tenant's GitOps directory went through.
#[derive(Debug, Serialize)]
pub struct GitopsReport {
    /// Files written or removed, in order.
    pub changes: Vec<FileChangeReport>,
    /// Whether the tenant was added to the registration file.
    pub registered: bool,
    /// Files that already had the rendered content.
    pub unchanged: usize,
    /// `tenant <name>`, or `platform <component>` for the platform-wide objects.
    #[serde(skip)]
    subject: String,
    #[serde(skip)]
    counts: [usize; 3],
}

impl From<&TenantReport> for GitopsReport {
    fn from(report: &TenantReport) -> Self {
        let count = |c: FileChange| report.changes.iter().filter(|(_, x)| *x == c).count();
        Self {
            changes: report
                .changes
                .iter()
                .map(|(path, change)| FileChangeReport {
                    path: display(path),
                    change: change.to_string(),
                })
                .collect(),
            registered: report.registered,
            unchanged: report.unchanged,
            subject: format!("tenant {}", report.tenant),
            counts: [
                count(FileChange::Created),
                count(FileChange::Updated),
                count(FileChange::Removed),
            ],
        }
    }
}

impl GitopsReport {
    /// True when nothing was written.
    pub fn is_unchanged(&self) -> bool {
        self.changes.is_empty() && !self.registered
    }

    /// The report of the platform-wide objects' directory.
    pub fn for_platform(report: &TenantReport) -> Self {
        Self {
            subject: format!("platform {}", report.tenant),
            ..Self::from(report)
        }
    }

    /// `tenant shop<label>: created 3 files, registered` (or `unchanged`).
    pub fn write_summary(&self, out: &mut dyn Write, label: &str) -> io::Result<()> {
        if self.is_unchanged() {
            return writeln!(out, "{}{label}: unchanged", self.subject);
        }
        let mut parts = Vec::new();
        for (word, n) in ["created", "updated", "removed"].iter().zip(self.counts) {
            if n > 0 {
                parts.push(format!("{word} {}", plural(n, "file")));
            }
        }
        if self.registered {
            parts.push("registered".to_owned());
        }
        writeln!(out, "{}{label}: {}", self.subject, parts.join(", "))
    }

    /// The summary, then one line per file.
    pub fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        self.write_summary(out, "")?;
        for c in &self.changes {
            writeln!(out, "  {:<7} {}", c.change, c.path)?;
        }
        Ok(())
    }
}

/// How a tenant's layers went on the cluster.
#[derive(Debug, Serialize)]
pub struct LayersReport {
    /// Layers in apply order.
    pub layers: Vec<LayerReport>,
    /// Kinds not served, whose layers were skipped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<MissingKind>,
    /// Deletions of objects no longer declared.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<DeleteReport>,
    /// Write requests sent.
    pub writes: usize,
}

impl From<&TenantApply> for LayersReport {
    fn from(applied: &TenantApply) -> Self {
        Self {
            layers: applied.layers.clone(),
            missing: applied.missing.clone(),
            pruned: applied.pruned.clone(),
            writes: applied.writes,
        }
    }
}

impl LayersReport {
    /// One line per layer with its counts, the objects that changed or failed, skipped
    /// kinds and prunes.
    pub fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        for layer in &self.layers {
            let mut counts: Vec<String> = Vec::new();
            for action in [
                Action::Created,
                Action::Changed,
                Action::WouldCreate,
                Action::WouldChange,
                Action::Failed,
            ] {
                let n = layer.objects.iter().filter(|o| o.action == action).count();
                if n > 0 {
                    counts.push(format!("{n} {}", action.as_str()));
                }
            }
            let detail = if counts.is_empty() {
                String::new()
            } else {
                format!(" ({})", counts.join(", "))
            };
            writeln!(
                out,
                "  {:<15} {}{detail}",
                layer.layer.as_str(),
                layer.status.as_str()
            )?;
            for o in &layer.objects {
                let word = match o.action {
                    Action::Changed => "changed",
                    Action::WouldChange => "would change",
                    Action::Failed => "failed",
                    _ => continue,
                };
                writeln!(out, "    {word} {}", o.object)?;
                // A failure's cause is printed once, below the table.
                if o.action != Action::Failed {
                    for d in &o.details {
                        writeln!(out, "      {d}")?;
                    }
                }
            }
        }
        for m in &self.missing {
            writeln!(out, "  skipped: {m}")?;
        }
        for p in &self.pruned {
            writeln!(out, "  {:<15} {}", p.outcome, p.object)?;
        }
        Ok(())
    }

    /// What was and was not applied after a failure, and how to resume.
    pub fn write_failure(
        &self,
        out: &mut dyn Write,
        tenant: &str,
        error: &str,
        rerun: &str,
    ) -> io::Result<()> {
        writeln!(out, "error: {error}")?;
        writeln!(
            out,
            "tenant {tenant} is NOT complete.\n  applied:     {}\n  failed:      {}\n  not applied: {}\nFix the cause, then run `{rerun}` again: it resumes where it stopped.",
            list_or_none(&ops::layers_with(
                &self.layers,
                &[LayerStatus::Applied, LayerStatus::Unchanged]
            )),
            list_or_none(&ops::layers_with(&self.layers, &[LayerStatus::Failed])),
            list_or_none(&ops::layers_with(&self.layers, &[LayerStatus::NotApplied])),
        )
    }
}
