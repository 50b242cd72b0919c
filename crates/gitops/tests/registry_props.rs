//! The registration file is shared with people: editing it must be exact. Over generated
//! files (entries, comments, other keys, indentation styles), adding then removing an entry
//! gives back the file as it was, adding twice is a no-op, and the result always parses
//! with exactly the expected entries.

use proptest::prelude::*;
use tenantry_gitops::registry;

prop_compose! {
    fn registration()(
        entries in prop::collection::btree_set("[a-m][a-z0-9-]{0,8}[a-z0-9]", 0..8),
        indent in prop::sample::select(vec!["", "  "]),
        comments in prop::collection::vec(any::<bool>(), 8),
        trailer in any::<bool>(),
    ) -> (String, Vec<String>) {
        let mut text = String::from("# platform tenants\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n");
        for (i, e) in entries.iter().enumerate() {
            if comments[i % comments.len()] {
                text.push_str(&format!("{indent}# about {e}\n"));
            }
            text.push_str(&format!("{indent}- {e}/\n"));
        }
        if trailer {
            text.push_str("commonLabels:\n  team: platform\n");
        }
        (text, entries.into_iter().collect())
    }
}

fn listed(text: &str) -> Vec<String> {
    let doc: serde_json::Value = serde_saphyr::from_str(text).unwrap();
    match doc.get("resources") {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().unwrap().to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn add_then_remove_restores_the_file((text, entries) in registration(), new in "[n-z][a-z0-9]{0,8}") {
        let entry = registry::entry_for(&new);
        let added = registry::add(&text, &entry).unwrap().expect("a new entry is added");
        let mut want: Vec<String> = entries.iter().map(|e| format!("{e}/")).collect();
        want.push(entry.clone());
        want.sort();
        let mut got = listed(&added);
        got.sort();
        prop_assert_eq!(got, want);
        prop_assert_eq!(registry::add(&added, &entry).unwrap(), None, "adding twice is a no-op");
        let removed = registry::remove(&added, &entry).unwrap().expect("the entry is removed");
        if entries.is_empty() {
            prop_assert_eq!(listed(&removed), Vec::<String>::new());
        } else {
            prop_assert_eq!(removed, text);
        }
    }

    #[test]
    fn sorted_lists_stay_sorted((text, _) in registration(), new in "[a-z][a-z0-9]{0,8}") {
        if let Some(added) = registry::add(&text, &registry::entry_for(&new)).unwrap() {
            // Ordered by tenant name (`i` before `i-a`), not by the entry's spelling.
            let got: Vec<String> = listed(&added).iter().map(|e| e.trim_end_matches('/').to_owned()).collect();
            let mut sorted = got.clone();
            sorted.sort();
            prop_assert_eq!(got, sorted);
        }
    }
}
