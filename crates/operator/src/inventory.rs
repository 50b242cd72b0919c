//! Which objects carry which tenant's label, per kind: what the drift watches have seen,
//! kept as small as the question it answers.
//!
//! A reconcile asks one thing of the cluster before planning: which of the tenant's objects
//! exist. The drift watches already see every labelled object of every kind Tenantry
//! renders, so keeping their names answers it with no request (see `ops::get_known`). A
//! kube-runtime store would keep each object's whole metadata and a typed key per entry,
//! about a kilobyte each; ten thousand objects (a thousand tenants) would be most of the
//! operator's memory. Here an entry is its namespace, name and tenant.
//!
//! A watch (re)starts with a full list: until that list is done for every kind, the
//! inventory cannot say an object is absent, so it answers nothing and the reconcile lists
//! as the CLI does. A re-list replaces a kind's entries when it is complete, so objects
//! deleted while the watch was down do not linger.

use std::collections::HashMap;

/// `(namespace, name)` of an object.
type Key = (Option<Box<str>>, Box<str>);

/// One watch event, reduced to what the inventory keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen<'a> {
    /// A (re)list starts.
    ListStarted,
    /// An object of the list (or a change): its tenant label, if it still has one.
    Object {
        /// Its namespace.
        namespace: Option<&'a str>,
        /// Its name.
        name: &'a str,
        /// Its tenant label's value.
        tenant: Option<&'a str>,
        /// True within a (re)list.
        listing: bool,
    },
    /// The (re)list is complete.
    ListDone,
    /// An object was deleted.
    Deleted {
        /// Its namespace.
        namespace: Option<&'a str>,
        /// Its name.
        name: &'a str,
    },
}

#[derive(Debug, Default)]
struct Kind {
    listed: bool,
    relist: Option<HashMap<Key, Box<str>>>,
    objects: HashMap<Key, Box<str>>,
}

/// The objects of each watched kind, by tenant. Kinds are numbered as the caller's list.
#[derive(Debug, Default)]
pub struct Inventory {
    kinds: Vec<Kind>,
}

fn key(namespace: Option<&str>, name: &str) -> Key {
    (namespace.map(Box::from), Box::from(name))
}

impl Inventory {
    /// An inventory of `kinds` kinds, none listed yet.
    pub fn new(kinds: usize) -> Self {
        Self {
            kinds: (0..kinds).map(|_| Kind::default()).collect(),
        }
    }

    /// Take one event of kind number `kind` (ignored when out of range).
    pub fn record(&mut self, kind: usize, seen: Seen<'_>) {
        let Some(k) = self.kinds.get_mut(kind) else {
            return;
        };
        match seen {
            Seen::ListStarted => k.relist = Some(HashMap::new()),
            Seen::ListDone => {
                k.objects = k.relist.take().unwrap_or_default();
                k.objects.shrink_to_fit();
                k.listed = true;
            }
            Seen::Object {
                namespace,
                name,
                tenant,
                listing,
            } => {
                let target = match (&mut k.relist, listing) {
                    (Some(relist), true) => relist,
                    _ => &mut k.objects,
                };
                match tenant {
                    Some(t) => {
                        target.insert(key(namespace, name), Box::from(t));
                    }
                    None => {
                        target.remove(&key(namespace, name));
                    }
                }
            }
            Seen::Deleted { namespace, name } => {
                k.objects.remove(&key(namespace, name));
            }
        }
    }

    /// The objects labelled for `tenant`, as `(kind, namespace, name)`; `None` until every
    /// kind has been listed once.
    pub fn of_tenant(&self, tenant: &str) -> Option<Vec<(usize, Option<String>, String)>> {
        if !self.kinds.iter().all(|k| k.listed) {
            return None;
        }
        let mut found: Vec<_> = self
            .kinds
            .iter()
            .enumerate()
            .flat_map(|(i, k)| {
                k.objects
                    .iter()
                    .filter(|(_, t)| &***t == tenant)
                    .map(move |((ns, name), _)| {
                        (i, ns.as_deref().map(str::to_owned), name.to_string())
                    })
            })
            .collect();
        found.sort();
        Some(found)
    }

    /// Objects held, over every kind.
    pub fn len(&self) -> usize {
        self.kinds.iter().map(|k| k.objects.len()).sum()
    }

    /// True when no object is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object<'a>(ns: &'a str, name: &'a str, tenant: Option<&'a str>, listing: bool) -> Seen<'a> {
        Seen::Object {
            namespace: Some(ns),
            name,
            tenant,
            listing,
        }
    }

    fn listed(kinds: usize) -> Inventory {
        let mut inv = Inventory::new(kinds);
        for k in 0..kinds {
            inv.record(k, Seen::ListStarted);
            inv.record(k, Seen::ListDone);
        }
        inv
    }

    #[test]
    fn nothing_is_known_until_every_kind_has_been_listed() {
        let mut inv = Inventory::new(2);
        inv.record(0, Seen::ListStarted);
        inv.record(0, object("shop", "deny", Some("shop"), true));
        inv.record(0, Seen::ListDone);
        assert_eq!(inv.of_tenant("shop"), None);
        inv.record(1, Seen::ListStarted);
        inv.record(1, Seen::ListDone);
        assert_eq!(
            inv.of_tenant("shop"),
            Some(vec![(0, Some("shop".into()), "deny".into())])
        );
        assert_eq!(inv.of_tenant("blog"), Some(vec![]));
    }

    #[test]
    fn changes_deletions_and_relabels_are_followed() {
        let mut inv = listed(2);
        inv.record(0, object("shop", "deny", Some("shop"), false));
        inv.record(1, object("shop", "quota", Some("shop"), false));
        inv.record(1, object("blog", "quota", Some("blog"), false));
        assert_eq!(inv.of_tenant("shop").unwrap().len(), 2);
        inv.record(
            0,
            Seen::Deleted {
                namespace: Some("shop"),
                name: "deny",
            },
        );
        // Relabelled away from the tenant (the watch still sees it by label: another tenant).
        inv.record(1, object("shop", "quota", Some("blog"), false));
        assert_eq!(inv.of_tenant("shop"), Some(vec![]));
        assert_eq!(inv.of_tenant("blog").unwrap().len(), 2);
        // The label removed: gone from the inventory.
        inv.record(1, object("shop", "quota", None, false));
        assert_eq!(inv.of_tenant("blog").unwrap().len(), 1);
        assert_eq!(inv.len(), 1);
    }

    #[test]
    fn a_relist_replaces_a_kind_so_deletions_missed_meanwhile_do_not_linger() {
        let mut inv = listed(1);
        inv.record(0, object("shop", "a", Some("shop"), false));
        inv.record(0, object("shop", "b", Some("shop"), false));
        // The watch restarts; `b` was deleted while it was down.
        inv.record(0, Seen::ListStarted);
        inv.record(0, object("shop", "a", Some("shop"), true));
        // Until the relist is done, the old entries answer.
        assert_eq!(inv.of_tenant("shop").unwrap().len(), 2);
        inv.record(0, Seen::ListDone);
        assert_eq!(
            inv.of_tenant("shop"),
            Some(vec![(0, Some("shop".into()), "a".into())])
        );
    }

    #[test]
    fn an_unknown_kind_number_is_ignored() {
        let mut inv = listed(1);
        inv.record(5, object("shop", "a", Some("shop"), false));
        assert!(inv.is_empty());
    }
}
