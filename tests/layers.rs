//! The shape of `src/`: one folder per layer, each using only the layers
//! below it (docs/architecture.md), and no module too long to read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each folder and the folders it may use; the order is bottom to top.
const LAYERS: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("metrics", &[]),
    ("tls", &[]),
    ("config", &["model", "tls"]),
    ("db", &["config", "model", "tls"]),
    ("incident", &["config", "model"]),
    ("collect", &["config", "db", "metrics", "model"]),
    (
        "round",
        &["collect", "config", "db", "incident", "metrics", "model"],
    ),
    ("web", &["config", "incident", "model", "round", "tls"]),
    ("cli", &["config", "incident", "model", "round", "tls"]),
];

const MAX_LINES: usize = 500;

fn src() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The crate's top-level modules a source text names: `crate::x` paths and
/// `use crate::{x, y::z}` groups.
fn named_layers(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for item in inner.split(',') {
                let name = item.trim().split("::").next().unwrap_or("");
                found.insert(name.trim().to_owned());
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found.retain(|n| !n.is_empty());
    found
}

#[test]
fn the_source_root_holds_only_the_entry_points_and_the_layer_folders() {
    let mut entries: Vec<String> = std::fs::read_dir(src())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    let mut expected: Vec<String> = LAYERS.iter().map(|(l, _)| (*l).to_owned()).collect();
    expected.extend(["lib.rs".to_owned(), "main.rs".to_owned()]);
    expected.sort();
    assert_eq!(entries, expected);
}

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut violations = Vec::new();
    for (layer, may_use) in LAYERS {
        let mut files = Vec::new();
        rust_files(&src().join(layer), &mut files);
        assert!(!files.is_empty(), "no sources under src/{layer}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for used in named_layers(&text) {
                if used != *layer && !may_use.contains(&used.as_str()) {
                    violations.push(format!("{} uses {used}", file.display()));
                }
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
    // Each layer may only use layers listed before it: no cycle is possible.
    for (i, (layer, may_use)) in LAYERS.iter().enumerate() {
        for used in *may_use {
            let below = LAYERS[..i].iter().any(|(l, _)| l == used);
            assert!(below, "{layer} may use {used}, which is not below it");
            assert!(allowed.contains_key(used));
        }
    }
}

#[test]
fn no_module_is_over_500_lines() {
    let mut files = Vec::new();
    rust_files(src(), &mut files);
    let long: Vec<String> = files
        .iter()
        .map(|f| (f, std::fs::read_to_string(f).unwrap().lines().count()))
        .filter(|(_, n)| *n > MAX_LINES)
        .map(|(f, n)| format!("{}: {n} lines", f.display()))
        .collect();
    assert!(long.is_empty(), "{long:#?}");
}

#[test]
fn layer_names_are_read_from_paths_and_groups() {
    let text = "use crate::model::view::X;\nuse crate::{config::permissions, tls};\n\
                let x = crate::db::pool::build();";
    let found: Vec<String> = named_layers(text).into_iter().collect();
    assert_eq!(found, ["config", "db", "model", "tls"]);
}
