//! `--output table` as aws prints it (awscli's formatter.py and table.py,
//! read and re-expressed): the operation's name as the title; each
//! object a section whose scalar members are one row under sorted column
//! headers (turned into name | value rows when the table is wider than
//! the terminal); its lists and objects nested sections below, indented
//! by one `|` a level.

use serde_json::{Map, Value};

use super::python;

/// One titled block of rows.
#[derive(Default)]
struct Section {
    title: Option<String>,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    indent: usize,
    widths: Vec<usize>,
    columns: Option<usize>,
}

impl Section {
    fn new(title: Option<&str>, indent: usize) -> Self {
        Self {
            title: title.map(str::to_string),
            indent,
            ..Default::default()
        }
    }

    fn set_headers(&mut self, headers: Vec<String>) {
        self.update_widths(&headers);
        self.columns.get_or_insert(headers.len());
        self.headers = headers;
    }

    fn add_row(&mut self, row: Vec<String>) {
        self.columns.get_or_insert(row.len());
        self.update_widths(&row);
        self.rows.push(row);
    }

    fn update_widths(&mut self, cells: &[String]) {
        if self.widths.is_empty() {
            self.widths = cells.iter().map(|c| text_width(c)).collect();
        } else {
            for (w, c) in self.widths.iter_mut().zip(cells) {
                *w = (*w).max(text_width(c));
            }
        }
    }

    /// The columns' widths with `padding` each, scaled to sum to `total`.
    fn column_widths(&self, padding: usize, total: usize) -> Vec<usize> {
        let unscaled: Vec<usize> = self.widths.iter().map(|w| w + padding).collect();
        let sum: usize = unscaled.iter().sum();
        if unscaled.is_empty() || sum == 0 {
            return unscaled;
        }
        let scale = total as f64 / sum as f64;
        // Python's round(): half to even.
        let mut scaled: Vec<i64> = unscaled
            .iter()
            .map(|w| (scale * *w as f64).round_ties_even() as i64)
            .collect();
        let mut off = scaled.iter().sum::<i64>() - total as i64;
        while off != 0 {
            let order: Vec<usize> = if off < 0 {
                (0..scaled.len()).rev().collect()
            } else {
                (0..scaled.len()).collect()
            };
            for i in order {
                if off > 0 {
                    scaled[i] -= 1;
                    off -= 1;
                } else {
                    scaled[i] += 1;
                    off += 1;
                }
                if off == 0 {
                    break;
                }
            }
        }
        scaled.into_iter().map(|w| w.max(0) as usize).collect()
    }

    fn total_width(&self) -> usize {
        let columns: usize = self.widths.iter().map(|w| w + 4).sum::<usize>() + 2;
        let title = self.title.as_deref().map_or(0, text_width) + 2;
        columns.max(title) + 2 * self.indent
    }
}

/// Columns a terminal gives `text`: East Asian wide, full-width and
/// ambiguous characters two, as aws counts them.
fn text_width(text: &str) -> usize {
    use super::east_asian_width::WIDE;
    text.chars()
        .map(|c| {
            let c = c as u32;
            let wide = WIDE
                .binary_search_by(|&(lo, hi)| {
                    if hi < c {
                        std::cmp::Ordering::Less
                    } else if lo > c {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Equal
                    }
                })
                .is_ok();
            if wide {
                2
            } else {
                1
            }
        })
        .sum()
}

/// The sections made from a response, in order.
struct Builder {
    sections: Vec<Section>,
}

impl Builder {
    fn current(&mut self) -> &mut Section {
        if self.sections.is_empty() {
            self.sections.push(Section::default());
        }
        let last = self.sections.len() - 1;
        &mut self.sections[last]
    }

    fn new_section(&mut self, title: Option<&str>, indent: usize) {
        self.sections.push(Section::new(title, indent));
    }

    /// A row; one of another width than its section's goes in a section
    /// of its own (aws fails there; a table is still better).
    fn add_row(&mut self, row: Vec<String>) {
        let section = self.current();
        if section.columns.is_some_and(|n| n != row.len()) {
            let indent = section.indent;
            self.new_section(None, indent);
        }
        self.current().add_row(row);
    }

    /// `current` under `title`; false when it is empty (nothing printed).
    fn build(&mut self, title: Option<&str>, current: &Value, indent: usize) -> bool {
        if is_falsy(current) {
            return false;
        }
        if title.is_some() {
            self.new_section(title, indent);
        }
        match current {
            Value::Array(items) if items.first().is_some_and(Value::is_object) => {
                self.list_sections(items, indent, title)
            }
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::Array(cells) if cells.iter().all(is_scalar) => {
                            self.add_row(cells.iter().map(python::str).collect())
                        }
                        // Python iterates a dict's keys there.
                        Value::Object(map) => self.add_row(map.keys().cloned().collect()),
                        Value::Array(_) => {
                            self.build(None, item, 0);
                        }
                        scalar => self.add_row(vec![python::str(scalar)]),
                    }
                }
            }
            Value::Object(map) => self.object_section(map, indent),
            _ => {}
        }
        true
    }

    fn object_section(&mut self, map: &Map<String, Value>, indent: usize) {
        let (headers, more) = split_keys(map.iter());
        match headers.as_slice() {
            [] => {}
            [one] => {
                let row = vec![one.clone(), python::str(&map[one])];
                self.add_row(row);
            }
            _ => {
                let row = headers.iter().map(|h| python::str(&map[h])).collect();
                self.current().set_headers(headers);
                self.add_row(row);
            }
        }
        for key in more {
            self.build(Some(&key), &map[&key], indent + 1);
        }
    }

    fn list_sections(&mut self, items: &[Value], indent: usize, title: Option<&str>) {
        let objects: Vec<&Map<String, Value>> = items.iter().filter_map(Value::as_object).collect();
        let (headers, more) = split_keys(objects.iter().flat_map(|o| o.iter()));
        self.current().set_headers(headers.clone());
        for (i, element) in objects.iter().enumerate() {
            if i > 0 && !more.is_empty() {
                self.new_section(title, indent);
                self.current().set_headers(headers.clone());
            }
            let row = headers
                .iter()
                .map(|h| element.get(h).map(python::str).unwrap_or_default())
                .collect();
            self.add_row(row);
            for key in &more {
                if let Some(v) = element.get(key) {
                    self.build(Some(key), v, indent + 1);
                }
            }
        }
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// Python's falsy values: aws prints nothing for them.
fn is_falsy(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Scalar keys (the columns) and the others (nested sections), each
/// sorted and without repeats.
fn split_keys<'a>(
    members: impl Iterator<Item = (&'a String, &'a Value)>,
) -> (Vec<String>, Vec<String>) {
    let (mut scalars, mut nested) = (Vec::new(), Vec::new());
    for (k, v) in members {
        if is_scalar(v) {
            scalars.push(k.clone());
        } else {
            nested.push(k.clone());
        }
    }
    for keys in [&mut scalars, &mut nested] {
        keys.sort();
        keys.dedup();
    }
    (scalars, nested)
}

/// The table of `response` titled `operation`, fitted to a terminal
/// `terminal_width` columns wide; "" when there is nothing to show.
pub fn render(operation: &str, response: &Value, terminal_width: usize) -> String {
    let mut b = Builder {
        sections: Vec::new(),
    };
    if !b.build(Some(operation), response, 0) {
        return String::new();
    }
    let mut sections = b.sections;
    let mut width = max_width(&sections);
    if width > terminal_width {
        sections = sections.into_iter().map(vertical).collect();
        width = max_width(&sections);
    }
    let mut out = "-".repeat(width);
    out.push('\n');
    for s in &sections {
        render_section(&mut out, s, width);
    }
    out
}

fn max_width(sections: &[Section]) -> usize {
    sections.iter().map(Section::total_width).max().unwrap_or(0)
}

/// A one-row section as name | value rows, to fit a narrow terminal.
fn vertical(s: Section) -> Section {
    if s.rows.len() != 1 || s.headers.is_empty() {
        return s;
    }
    let mut v = Section::new(s.title.as_deref(), s.indent);
    for (h, cell) in s.headers.iter().zip(&s.rows[0]) {
        v.add_row(vec![h.clone(), cell.clone()]);
    }
    v
}

fn render_section(out: &mut String, s: &Section, width: usize) {
    let edge = "|".repeat(s.indent);
    let mut line = |text: String| {
        out.push_str(&edge);
        out.push_str(&text);
        out.push_str(&edge);
        out.push('\n');
    };
    let width = width.saturating_sub(s.indent * 2);
    if let Some(title) = s.title.as_deref().filter(|t| !t.is_empty()) {
        line(center(title, width, "|", "|"));
        if s.headers.is_empty() && s.rows.is_empty() {
            line(format!("+{}+", "-".repeat(width.saturating_sub(2))));
        }
    }
    if !s.headers.is_empty() {
        let widths = s.column_widths(4, width);
        line(line_break(&widths));
        let mut cells = String::new();
        for (i, (w, h)) in widths.iter().zip(&s.headers).enumerate() {
            cells.push_str(&center(h, *w, if i == 0 { "|" } else { "" }, "|"));
        }
        line(cells);
    }
    if s.rows.is_empty() {
        return;
    }
    let widths = s.column_widths(4, width);
    if widths.is_empty() {
        return;
    }
    line(line_break(&widths));
    for row in &s.rows {
        let mut cells = String::new();
        for (i, (w, c)) in widths.iter().zip(row).enumerate() {
            cells.push_str(&align_left(c, *w, if i == 0 { "|" } else { "" }, "|"));
        }
        line(cells);
    }
    line(line_break(&widths));
}

/// `+-----+----+`: the first cell with both edges, the others the right.
fn line_break(widths: &[usize]) -> String {
    let mut s = String::new();
    for (i, w) in widths.iter().enumerate() {
        if i == 0 {
            s.push_str(&format!("+{}+", "-".repeat(w.saturating_sub(2))));
        } else {
            s.push_str(&format!("{}+", "-".repeat(w.saturating_sub(1))));
        }
    }
    s
}

/// `text` centred in `length` columns between the edges (as aws does it,
/// rounding down on both sides, so the right side may get one more).
fn center(text: &str, length: usize, left: &str, right: &str) -> String {
    let len = text_width(text) as i64;
    let start = (length as i64) / 2 - len / 2 - 1;
    let so_far = left.len() as i64 + start + len;
    let right_spaces = length as i64 - right.len() as i64 - so_far;
    format!(
        "{left}{}{text}{}{right}",
        spaces(start),
        spaces(right_spaces)
    )
}

/// `text` two columns in from the left edge (none when it would not fit).
fn align_left(text: &str, length: usize, left: &str, right: &str) -> String {
    let len = text_width(text) as i64;
    let length = length as i64;
    let padding = if length - (len + 2 + left.len() as i64 + right.len() as i64) >= 0 {
        2
    } else {
        0
    };
    let rest = length - (left.len() as i64 + padding + len) - right.len() as i64;
    format!("{left}{}{text}{}{right}", spaces(padding), spaces(rest))
}

/// Python's `' ' * n`: nothing for n ≤ 0.
fn spaces(n: i64) -> String {
    " ".repeat(n.max(0) as usize)
}
