//! `--query`: a JMESPath expression applied to the response before it is
//! rendered, as aws applies it. Compiled before the verb runs, so a bad
//! expression changes nothing.

use serde_json::Value;

/// A compiled `--query`.
pub struct Query {
    text: String,
    expr: jmespath::Expression<'static>,
}

impl Query {
    /// An expression that does not parse is the user's error: it names
    /// --query and where the parser stopped.
    pub fn compile(text: &str) -> anyhow::Result<Self> {
        let expr = jmespath::compile(text)
            .map_err(|e| anyhow::anyhow!("--query {text:?}: not a JMESPath expression: {e}"))?;
        Ok(Self {
            text: text.to_string(),
            expr,
        })
    }

    /// The part of `v` the expression selects (null when none).
    pub fn apply(&self, v: &Value) -> anyhow::Result<Value> {
        let found = self
            .expr
            .search(v)
            .map_err(|e| anyhow::anyhow!("--query {:?}: {e}", self.text))?;
        serde_json::to_value(&*found).map_err(|e| anyhow::anyhow!("--query {:?}: {e}", self.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_as_aws_does() {
        let v = json!({"tasks": [{"id": "a", "n": 1}, {"id": "b", "n": 2}]});
        let q = |e: &str| Query::compile(e).unwrap().apply(&v).unwrap();
        assert_eq!(q("tasks[].id"), json!(["a", "b"]));
        assert_eq!(q("tasks[?n > `1`].id | [0]"), json!("b"));
        assert_eq!(q("length(tasks)"), json!(2));
        assert_eq!(q("nothing"), Value::Null);
    }

    #[test]
    fn bad_expressions_name_the_flag() {
        let e = Query::compile("tasks[")
            .err()
            .expect("an error")
            .to_string();
        assert!(
            e.starts_with("--query \"tasks[\": not a JMESPath expression"),
            "{e}"
        );
        let e = Query::compile("abs(tasks)")
            .unwrap()
            .apply(&json!({"tasks": []}))
            .expect_err("an error")
            .to_string();
        assert!(e.starts_with("--query \"abs(tasks)\": "), "{e}");
    }
}
