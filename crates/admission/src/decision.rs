//! A validator's verdict and how it is worded for the person whose `kubectl apply` failed.
//!
//! The API server shows the status message verbatim after `admission webhook "..." denied the
//! request:`, and GitOps controllers copy it into conditions and events, where long text is
//! cut. So the message leads with what matters (which checks, at which fields, what to set),
//! stays on one line, and is bounded: past [`MAX_MESSAGE_LEN`] it ends with how many findings
//! were left out and how to see all of them. Warnings are bounded the same way, because the
//! API server truncates each warning past 256 characters and drops them past 4 KiB in total.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::review::{AdmissionResponse, ResponseStatus};

/// Upper bound of a denial message, in bytes.
pub const MAX_MESSAGE_LEN: usize = 2048;
/// Upper bound of one warning, in bytes (the API server truncates longer ones).
pub const MAX_WARNING_LEN: usize = 256;
/// Upper bound of all warnings together, in bytes (the API server ignores warnings past 4 KiB).
pub const MAX_WARNINGS_TOTAL: usize = 4000;

/// One reason to refuse the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Stable check ID (`runAsNonRoot`, `protect-platform-objects`, ...); also the `check`
    /// label of `tenantry_webhook_denials_total`.
    pub check: String,
    /// Field path in the object, empty when the whole object is at fault.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub remediation: String,
}

/// The verdict on one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// Every reason to deny; empty means allowed.
    pub denials: Vec<Denial>,
    /// Shown to the client whatever the verdict (audit/warn-level findings).
    pub warnings: Vec<String>,
    /// Prefix of the denial message, e.g. `Pod shop/web violates PodSecurity "restricted:latest"`.
    pub summary: String,
}

impl Decision {
    /// An allowed request with nothing to say.
    pub fn allow() -> Self {
        Self::default()
    }

    /// Whether the request is allowed.
    pub fn allowed(&self) -> bool {
        self.denials.is_empty()
    }

    /// The one-line denial message: `summary: [check] path: remediation; ...`, findings of the
    /// same check and remediation folded together, bounded by [`MAX_MESSAGE_LEN`].
    pub fn message(&self) -> String {
        let mut groups: Vec<(&str, &str, Vec<&str>)> = Vec::new();
        // (check, remediation) → its group: a lookup, not a search, per denial.
        let mut group_of: HashMap<(&str, &str), usize> = HashMap::new();
        for d in &self.denials {
            let remediation = if d.remediation.is_empty() {
                d.message.as_str()
            } else {
                d.remediation.as_str()
            };
            match group_of
                .get(&(d.check.as_str(), remediation))
                .and_then(|&i| groups.get_mut(i))
            {
                Some((_, _, paths)) => {
                    if !d.path.is_empty() {
                        paths.push(&d.path);
                    }
                }
                None => {
                    group_of.insert((&d.check, remediation), groups.len());
                    groups.push((
                        &d.check,
                        remediation,
                        if d.path.is_empty() {
                            vec![]
                        } else {
                            vec![d.path.as_str()]
                        },
                    ));
                }
            }
        }
        let mut out = if self.summary.is_empty() {
            "denied by tenantry".to_owned()
        } else {
            self.summary.clone()
        };
        let _ = write!(
            out,
            " ({} finding{})",
            self.denials.len(),
            if self.denials.len() == 1 { "" } else { "s" }
        );
        // Room kept for the "...and N more" tail.
        let tail_room = 80;
        let fits = |out: &str, extra: usize| out.len() + extra + tail_room <= MAX_MESSAGE_LEN;
        for (i, (check, remediation, paths)) in groups.iter().enumerate() {
            let head = format!("{}[{check}]", if i == 0 { ": " } else { "; " });
            let fix = format!(": {}", one_line(remediation));
            // As many of the group's paths as fit; a group no path of which fits is left
            // out whole, and so is a pathless one that does not fit.
            let mut part = head;
            let mut shown = 0;
            for path in paths {
                let separator = if shown == 0 { " " } else { ", " };
                if !fits(&out, part.len() + separator.len() + path.len() + fix.len()) {
                    break;
                }
                part.push_str(separator);
                part.push_str(path);
                shown += 1;
            }
            let whole = shown == paths.len() && fits(&out, part.len() + fix.len());
            if whole || shown > 0 {
                part.push_str(&fix);
                out.push_str(&part);
            }
            if !whole {
                let left: usize = groups[i..].iter().map(|(_, _, p)| p.len().max(1)).sum();
                let _ = write!(
                    out,
                    "; ...and {} more (run `tenantry check` on the manifest for all of them)",
                    left - shown
                );
                break;
            }
        }
        truncate(&mut out, MAX_MESSAGE_LEN);
        out
    }

    /// The AdmissionReview response for this verdict.
    pub fn into_response(self, uid: String) -> AdmissionResponse {
        let warnings = bound_warnings(&self.warnings);
        if self.allowed() {
            AdmissionResponse {
                uid,
                allowed: true,
                status: None,
                warnings,
            }
        } else {
            AdmissionResponse {
                uid,
                allowed: false,
                status: Some(ResponseStatus {
                    code: 403,
                    reason: "Forbidden",
                    message: self.message(),
                }),
                warnings,
            }
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Cut `s` to at most `max` bytes on a character boundary, marking the cut with `...`.
fn truncate(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str("...");
}

fn bound_warnings(warnings: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(warnings.len());
    let mut total = 0;
    for (i, w) in warnings.iter().enumerate() {
        let mut w = one_line(w);
        truncate(&mut w, MAX_WARNING_LEN);
        if total + w.len() > MAX_WARNINGS_TOTAL {
            out.push(format!(
                "tenantry: {} more warnings not shown",
                warnings.len() - i
            ));
            break;
        }
        total += w.len();
        out.push(w);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial(check: &str, path: &str, remediation: &str) -> Denial {
        Denial {
            check: check.into(),
            path: path.into(),
            message: format!("{check} failed"),
            remediation: remediation.into(),
        }
    }

    #[test]
    fn message_folds_paths_of_the_same_check() {
        let d = Decision {
            denials: vec![
                denial(
                    "runAsNonRoot",
                    "spec.securityContext.runAsNonRoot",
                    "set it true",
                ),
                denial(
                    "privileged",
                    "spec.containers[0].securityContext.privileged",
                    "unset",
                ),
                denial(
                    "runAsNonRoot",
                    "spec.containers[1].securityContext",
                    "set it true",
                ),
            ],
            warnings: vec![],
            summary: "Pod a/b violates PodSecurity \"restricted:latest\"".into(),
        };
        assert_eq!(
            d.message(),
            "Pod a/b violates PodSecurity \"restricted:latest\" (3 findings): [runAsNonRoot] \
             spec.securityContext.runAsNonRoot, spec.containers[1].securityContext: set it true; \
             [privileged] spec.containers[0].securityContext.privileged: unset"
        );
    }

    #[test]
    fn message_is_bounded_and_says_what_was_left_out() {
        let denials = (0..200)
            .map(|i| {
                denial(
                    &format!("check{i}"),
                    &format!("spec.field{i}"),
                    &"x".repeat(40),
                )
            })
            .collect();
        let d = Decision {
            denials,
            ..Decision::default()
        };
        let m = d.message();
        assert!(m.len() <= MAX_MESSAGE_LEN, "{}", m.len());
        assert!(m.contains("more (run `tenantry check`"), "{m}");
        assert!(
            m.starts_with("denied by tenantry (200 findings): [check0]"),
            "{m}"
        );
    }

    #[test]
    fn a_group_too_long_for_the_message_lists_the_paths_that_fit() {
        let d = Decision {
            denials: (0..500)
                .map(|i| denial("runAsNonRoot", &format!("spec.containers[{i}].x"), "set it"))
                .collect(),
            ..Decision::default()
        };
        let m = d.message();
        assert!(m.len() <= MAX_MESSAGE_LEN, "{}", m.len());
        assert!(
            m.starts_with(
                "denied by tenantry (500 findings): [runAsNonRoot] spec.containers[0].x, \
                 spec.containers[1].x, "
            ),
            "{m}"
        );
        let shown = m.matches("spec.containers[").count();
        assert!(shown > 50, "{m}");
        assert!(
            m.ends_with(&format!(
                ": set it; ...and {} more (run `tenantry check` on the manifest for all of them)",
                500 - shown
            )),
            "{m}"
        );
    }

    #[test]
    fn warnings_are_bounded_one_by_one_and_in_total() {
        let d = Decision {
            warnings: (0..100)
                .map(|i| format!("w{i} {}", "é".repeat(300)))
                .collect(),
            ..Decision::default()
        };
        let r = d.into_response("u".into());
        assert!(r.allowed);
        assert!(r.warnings.iter().all(|w| w.len() <= MAX_WARNING_LEN));
        assert!(r.warnings.iter().map(String::len).sum::<usize>() <= MAX_WARNINGS_TOTAL + 64);
        assert!(
            r.warnings
                .last()
                .unwrap()
                .contains("more warnings not shown")
        );
    }

    #[test]
    fn denied_response_has_forbidden_status() {
        let d = Decision {
            denials: vec![denial("c", "", "do x")],
            ..Decision::default()
        };
        let r = d.into_response("u".into());
        assert!(!r.allowed);
        let status = r.status.unwrap();
        assert_eq!((status.code, status.reason), (403, "Forbidden"));
        assert_eq!(status.message, "denied by tenantry (1 finding): [c]: do x");
    }
}
