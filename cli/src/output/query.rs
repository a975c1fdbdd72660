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

    /// The key orders of the expression's multi-select hashes
    /// (`{name: name, id: taskArn}`): aws prints their objects' keys in
    /// that order, where serde_json's objects keep theirs sorted.
    pub fn key_orders(&self) -> Vec<Vec<String>> {
        let mut orders = Vec::new();
        multi_hashes(self.expr.as_ast(), &mut orders);
        orders
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

fn multi_hashes(ast: &jmespath::ast::Ast, orders: &mut Vec<Vec<String>>) {
    use jmespath::ast::Ast;
    match ast {
        Ast::MultiHash { elements, .. } => {
            orders.push(elements.iter().map(|kv| kv.key.clone()).collect());
            for kv in elements {
                multi_hashes(&kv.value, orders);
            }
        }
        Ast::Comparison { lhs, rhs, .. }
        | Ast::Projection { lhs, rhs, .. }
        | Ast::And { lhs, rhs, .. }
        | Ast::Or { lhs, rhs, .. }
        | Ast::Subexpr { lhs, rhs, .. } => {
            multi_hashes(lhs, orders);
            multi_hashes(rhs, orders);
        }
        Ast::Condition {
            predicate, then, ..
        } => {
            multi_hashes(predicate, orders);
            multi_hashes(then, orders);
        }
        Ast::Expref { ast, .. } => multi_hashes(ast, orders),
        Ast::Flatten { node, .. } | Ast::Not { node, .. } | Ast::ObjectValues { node, .. } => {
            multi_hashes(node, orders)
        }
        Ast::Function { args, .. } => args.iter().for_each(|a| multi_hashes(a, orders)),
        Ast::MultiList { elements, .. } => elements.iter().for_each(|a| multi_hashes(a, orders)),
        Ast::Identity { .. }
        | Ast::Field { .. }
        | Ast::Index { .. }
        | Ast::Literal { .. }
        | Ast::Slice { .. } => {}
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
    fn multi_select_hashes_keep_their_key_order() {
        let q = Query::compile("tasks[?n > `0`].{z: id, a: {y: n, b: id}}").unwrap();
        assert_eq!(
            q.key_orders(),
            vec![
                vec!["z".to_string(), "a".into()],
                vec!["y".to_string(), "b".into()]
            ]
        );
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
