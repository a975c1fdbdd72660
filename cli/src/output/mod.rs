//! What the verbs print. The ECS verbs print as aws does (`--output
//! json|table|text`, after `--query`): pure renderers, one a module, each
//! tested against aws-cli's own output for the same JSON (fixtures/,
//! made by scripts/aws_output_fixtures.py). Berth's own listings (images,
//! containers) keep their JSON and their people's table (their own
//! `--output`, which shares the global flag's name and so its type).

mod east_asian_width;
mod json;
mod python;
mod query;
mod table;
mod terminal;
mod text;

use serde::Serialize;
use serde_json::Value;

pub use query::Query;
pub use terminal::width as terminal_width;

/// `--output` of the ECS verbs, as aws takes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// JSON, indented by four as aws prints it.
    #[default]
    Json,
    /// aws's table: the operation as the title, nested sections.
    Table,
    /// aws's text: tab-separated lines led by upper-case names.
    Text,
}

/// `response` of `operation` as aws prints it with this format, fitted
/// to a terminal `width` columns wide (tables only); `query` (the one
/// that selected `response`) gives its multi-select hashes' key order.
pub fn render(
    format: Format,
    operation: &str,
    response: &Value,
    width: usize,
    query: Option<&Query>,
) -> String {
    match format {
        Format::Json => json::render(response, &query.map(Query::key_orders).unwrap_or_default()),
        Format::Table => table::render(operation, response, width),
        Format::Text => text::render(response),
    }
}

/// How the ECS verbs print: `--output` after `--query`.
pub struct Printer {
    pub format: Format,
    pub query: Option<Query>,
}

impl Printer {
    /// Print `response` of `operation`; an error is --query's.
    pub fn print(&self, operation: &str, response: &Value) -> anyhow::Result<()> {
        let selected;
        let response = match &self.query {
            Some(q) => {
                selected = q.apply(response)?;
                &selected
            }
            None => response,
        };
        let width = terminal_width();
        let text = render(self.format, operation, response, width, self.query.as_ref());
        stdout(text.as_bytes())?;
        Ok(())
    }
}

/// Write to stdout; a reader that went away (`| head`) is no error, as
/// with aws.
pub fn stdout(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// berth's own listings (`image ls`, `runtime list`): as text, the rows'
/// cells tab-separated (no headers, as aws's text); else rows under
/// headers, each column as wide as its widest cell.
pub fn table(format: Format, headers: &[&str], rows: &[Vec<String>]) {
    if format == Format::Text {
        for row in rows {
            println!("{}", row.join("\t"));
        }
        return;
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.len());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod fixtures;
