//! `--output text` as aws prints it (awscli's text.py, read and
//! re-expressed): each object's scalar members on one tab-separated line
//! in key order, led by the upper-cased name of the member it came from;
//! its lists and objects follow, each under its own name. The members of
//! a list of objects line up: every line has a cell for every scalar key
//! any of them has.

use serde_json::{Map, Value};

use super::python;

pub fn render(v: &Value) -> String {
    let mut out = String::new();
    item(&mut out, v, None, None);
    out
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

fn item(out: &mut String, v: &Value, name: Option<&str>, keys: Option<&[String]>) {
    match v {
        Value::Object(map) => object(out, map, name, keys),
        Value::Array(items) => list(out, items, name),
        scalar => {
            out.push_str(&python::str(scalar));
            out.push('\n');
        }
    }
}

fn list(out: &mut String, items: &[Value], name: Option<&str>) {
    if items.is_empty() {
        return;
    }
    if items.iter().any(Value::is_object) {
        let keys = scalar_keys(items);
        for element in items {
            item(out, element, name, Some(&keys));
        }
    } else if items.iter().any(Value::is_array) {
        let (scalars, nested): (Vec<&Value>, Vec<&Value>) =
            items.iter().partition(|v| is_scalar(v));
        if !scalars.is_empty() {
            scalar_list(out, &scalars, name);
        }
        for n in nested {
            item(out, n, name, None);
        }
    } else {
        scalar_list(out, &items.iter().collect::<Vec<_>>(), name);
    }
}

fn scalar_list(out: &mut String, items: &[&Value], name: Option<&str>) {
    match name {
        Some(name) => {
            for v in items {
                out.push_str(&format!("{}\t{}\n", name.to_uppercase(), python::str(v)));
            }
        }
        None => {
            let cells: Vec<String> = items.iter().map(|v| python::str(v)).collect();
            out.push_str(&cells.join("\t"));
            out.push('\n');
        }
    }
}

/// The scalar keys of a list's objects, sorted: its lines' columns.
fn scalar_keys(items: &[Value]) -> Vec<String> {
    let mut keys: Vec<String> = items
        .iter()
        .filter_map(Value::as_object)
        .flat_map(|o| {
            o.iter()
                .filter(|(_, v)| is_scalar(v))
                .map(|(k, _)| k.clone())
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn object(out: &mut String, map: &Map<String, Value>, name: Option<&str>, keys: Option<&[String]>) {
    let mut cells: Vec<String> = Vec::new();
    let mut nested: Vec<(&String, &Value)> = Vec::new();
    match keys {
        None => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            for (k, v) in members {
                if is_scalar(v) {
                    cells.push(python::str(v));
                } else {
                    nested.push((k, v));
                }
            }
        }
        Some(keys) => {
            for k in keys {
                cells.push(map.get(k).map(python::str).unwrap_or_default());
            }
            let mut rest: Vec<(&String, &Value)> =
                map.iter().filter(|(k, _)| !keys.contains(k)).collect();
            rest.sort_by(|a, b| a.0.cmp(b.0));
            nested = rest;
        }
    }
    if !cells.is_empty() {
        if let Some(name) = name {
            cells.insert(0, name.to_uppercase());
        }
        out.push_str(&cells.join("\t"));
        out.push('\n');
    }
    for (k, v) in nested {
        item(out, v, Some(k), None);
    }
}
