//! The core's modules depend on each other one way: no module reaches back
//! to one that depends on it. Read from the sources (`use crate::x` and
//! `crate::x::` paths outside `#[cfg(test)]`), so a new circle fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules: BTreeSet<String> = std::fs::read_dir(&src)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".rs").map(str::to_owned))
        .filter(|m| m != "lib")
        .collect();
    let mut graph = BTreeMap::new();
    for m in &modules {
        let text = std::fs::read_to_string(src.join(format!("{m}.rs"))).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let deps: BTreeSet<String> = code
            .match_indices("crate::")
            .map(|(i, _)| code[i + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>())
            .filter(|d| d != m && modules.contains(d))
            .collect();
        graph.insert(m.clone(), deps);
    }
    graph
}

/// A circle in `graph`, if any (depth-first), as a path of module names.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(g: &BTreeMap<String, BTreeSet<String>>, m: &str, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut c = path[i..].to_vec();
            c.push(m.to_owned());
            return Some(c);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_owned());
        for d in &g[m] {
            if let Some(c) = visit(g, d, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|m| visit(graph, m, &mut Vec::new(), &mut done))
}

#[test]
fn the_module_graph_has_no_circle() {
    let g = graph();
    assert!(g.len() > 10, "read the modules: {g:?}");
    assert!(g["backend"].contains("request"), "the graph is read from the sources: {g:?}");
    assert_eq!(circle(&g), None);
}

#[test]
fn a_circle_is_found() {
    let g: BTreeMap<String, BTreeSet<String>> =
        [("a", "b"), ("b", "c"), ("c", "a")].into_iter().map(|(m, d)| (m.to_owned(), BTreeSet::from([d.to_owned()]))).collect();
    assert_eq!(circle(&g), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
}

#[test]
fn only_request_rs_sends_requests() {
    // Every S3 request is built in request.rs: no other module touches the SDK client.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        if name != "request.rs" {
            assert!(!code.contains(".client."), "{name} uses the SDK client");
            assert!(!code.contains(".send()"), "{name} sends a request");
        }
    }
}
