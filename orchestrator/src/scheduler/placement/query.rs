//! ECS's cluster query language, as `memberOf` constraints use it: a
//! tokenizer, a recursive-descent parser and the [`Expr`] it builds, which
//! evaluates against one [`Instance`].

use std::cmp::Ordering;
use std::fmt;

use super::{Instance, PlacementError};

/// ECS's limit on a `memberOf` expression.
const MAX_EXPRESSION_LEN: usize = 2000;
/// Bounds the parser's recursion so a hostile expression cannot blow the stack.
const MAX_NESTING: usize = 32;

/// A parsed cluster-query-language expression, as used by `memberOf`.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    source: String,
    root: Node,
}

impl Expr {
    /// Parses `subject operator [argument]` terms joined by `and`/`&&`,
    /// `or`/`||`, `not`/`!` and parentheses. Errors carry the path
    /// `expression`.
    pub fn parse(source: &str) -> Result<Self, PlacementError> {
        if source.chars().count() > MAX_EXPRESSION_LEN {
            return Err(PlacementError::invalid(
                "expression",
                format!("longer than {MAX_EXPRESSION_LEN} characters"),
            ));
        }
        let tokens = tokenize(source)?;
        let mut parser = Parser {
            tokens,
            next: 0,
            end: source.chars().count() + 1,
        };
        let root = parser.expression(0)?;
        if let Some(token) = parser.peek() {
            return Err(parser.error_at(Some(token), "expected and, or or the end"));
        }
        Ok(Self {
            source: source.to_owned(),
            root,
        })
    }

    /// Whether the instance is a member of the set the expression describes.
    pub fn matches(&self, instance: &Instance) -> bool {
        self.root.eval(instance)
    }

    /// Whether the answer can change as tasks land (it looks at `task:group`).
    pub(super) fn depends_on_tasks(&self) -> bool {
        self.root.depends_on_tasks()
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    Term {
        subject: Subject,
        test: Test,
        /// `!=`, `!exists`, `not_in`: the plain test, inverted.
        negated: bool,
    },
}

impl Node {
    fn eval(&self, instance: &Instance) -> bool {
        match self {
            Self::All(nodes) => nodes.iter().all(|n| n.eval(instance)),
            Self::Any(nodes) => nodes.iter().any(|n| n.eval(instance)),
            Self::Not(node) => !node.eval(instance),
            Self::Term {
                subject,
                test,
                negated,
            } => subject.any_value(instance, |value| test.holds(value)) != *negated,
        }
    }

    fn depends_on_tasks(&self) -> bool {
        match self {
            Self::All(nodes) | Self::Any(nodes) => nodes.iter().any(Self::depends_on_tasks),
            Self::Not(node) => node.depends_on_tasks(),
            Self::Term { subject, .. } => *subject == Subject::TaskGroup,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Subject {
    Attribute(String),
    InstanceId,
    /// The groups of the tasks on the instance: true if any of them passes.
    TaskGroup,
}

impl Subject {
    /// Whether any of the subject's values passes `test`; a missing
    /// attribute has no values, so only negated tests hold for it.
    fn any_value(&self, instance: &Instance, mut test: impl FnMut(&str) -> bool) -> bool {
        match self {
            Self::Attribute(name) => instance.attribute(name).is_some_and(test),
            Self::InstanceId => test(&instance.id),
            Self::TaskGroup => instance.task_groups.iter().any(|g| test(g)),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Test {
    Exists,
    Equals(String),
    In(Vec<String>),
    Matches(String),
    Compare {
        operator: Comparison,
        argument: String,
        /// Parsed once, since every instance is compared against it.
        number: Option<f64>,
    },
}

impl Test {
    fn holds(&self, value: &str) -> bool {
        match self {
            Self::Exists => true,
            Self::Equals(argument) => value == argument,
            Self::In(arguments) => arguments.iter().any(|a| a == value),
            Self::Matches(pattern) => glob_matches(pattern, value),
            Self::Compare {
                operator,
                argument,
                number,
            } => {
                // Numbers compare as numbers only when both sides are numbers,
                // so `10 > 9` holds while `t3 > t2` is still meaningful.
                let ordering = match (number, value.parse::<f64>()) {
                    (Some(argument), Ok(value)) => value.partial_cmp(argument),
                    _ => Some(value.cmp(argument.as_str())),
                };
                ordering.is_some_and(|o| operator.accepts(o))
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Comparison {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

impl Comparison {
    fn accepts(self, ordering: Ordering) -> bool {
        match self {
            Self::Greater => ordering.is_gt(),
            Self::GreaterOrEqual => ordering.is_ge(),
            Self::Less => ordering.is_lt(),
            Self::LessOrEqual => ordering.is_le(),
        }
    }
}

/// `*` matches any run of characters (possibly empty); everything else
/// matches itself. The whole value must match.
fn glob_matches(pattern: &str, value: &str) -> bool {
    let (pattern, value) = (pattern.as_bytes(), value.as_bytes());
    let (mut p, mut v) = (0, 0);
    // Where the last `*` was and how much of `value` it swallowed: on a
    // mismatch, let that star take one more byte and retry. A later star
    // always supersedes an earlier one, which keeps this linear-ish.
    let mut backtrack: Option<(usize, usize)> = None;
    while v < value.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            backtrack = Some((p, v));
            p += 1;
        } else if p < pattern.len() && pattern[p] == value[v] {
            p += 1;
            v += 1;
        } else if let Some((star, swallowed)) = backtrack {
            p = star + 1;
            v = swallowed + 1;
            backtrack = Some((star, v));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenKind {
    Word,
    Symbol,
    Open,
    Close,
    /// `[` and `]`: AWS's spelling of a list (`in [a, b]`), beside `(a, b)`.
    OpenBracket,
    CloseBracket,
    Comma,
}

#[derive(Clone, Copy, Debug)]
struct Token<'s> {
    kind: TokenKind,
    text: &'s str,
    /// 1-based character column.
    position: usize,
}

const SYMBOLS: [&str; 10] = ["==", "!=", "=~", ">=", "<=", "&&", "||", ">", "<", "!"];

fn is_symbol_char(c: char) -> bool {
    matches!(c, '=' | '!' | '<' | '>' | '&' | '|' | '~')
}

fn tokenize(source: &str) -> Result<Vec<Token<'_>>, PlacementError> {
    let mut tokens = Vec::new();
    let mut chars = source.char_indices().enumerate().peekable();
    while let Some(&(column, (start, c))) = chars.peek() {
        let position = column + 1;
        let single = |kind| Token {
            kind,
            text: &source[start..start + c.len_utf8()],
            position,
        };
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '[' | ']' | ',' => {
                let kind = match c {
                    '(' => TokenKind::Open,
                    ')' => TokenKind::Close,
                    '[' => TokenKind::OpenBracket,
                    ']' => TokenKind::CloseBracket,
                    _ => TokenKind::Comma,
                };
                tokens.push(single(kind));
                chars.next();
            }
            c if is_symbol_char(c) => {
                let rest = &source[start..];
                let Some(symbol) = SYMBOLS.iter().find(|s| rest.starts_with(**s)) else {
                    return Err(PlacementError::Expression {
                        path: "expression".into(),
                        position,
                        token: format!("{c:?}"),
                        message: "unknown operator".into(),
                    });
                };
                tokens.push(Token {
                    kind: TokenKind::Symbol,
                    text: symbol,
                    position,
                });
                // Symbols are ASCII, so characters and bytes agree.
                for _ in 0..symbol.len() {
                    chars.next();
                }
            }
            _ => {
                let mut end = start;
                while let Some(&(_, (i, c))) = chars.peek() {
                    if c.is_whitespace()
                        || matches!(c, '(' | ')' | '[' | ']' | ',')
                        || is_symbol_char(c)
                    {
                        break;
                    }
                    end = i + c.len_utf8();
                    chars.next();
                }
                tokens.push(Token {
                    kind: TokenKind::Word,
                    text: &source[start..end],
                    position,
                });
            }
        }
    }
    Ok(tokens)
}

/// Recursive descent over
///
/// ```text
/// expression := conjunction (("or" | "||") conjunction)*
/// conjunction := unary (("and" | "&&") unary)*
/// unary      := ("not" | "!") unary | "(" expression ")" | term
/// term       := subject operator [argument | list]
/// list       := "(" argument ("," argument)* ")" | "[" argument ("," argument)* "]"
/// ```
///
/// Keywords are recognised by position, so a value may be spelt `and`.
struct Parser<'s> {
    tokens: Vec<Token<'s>>,
    next: usize,
    /// The column reported for "end of expression".
    end: usize,
}

impl<'s> Parser<'s> {
    fn peek(&self) -> Option<Token<'s>> {
        self.tokens.get(self.next).copied()
    }

    fn advance(&mut self) -> Option<Token<'s>> {
        let token = self.peek();
        self.next += usize::from(token.is_some());
        token
    }

    /// Consumes the next token if it is one of `spellings`.
    fn eat(&mut self, spellings: &[&str]) -> bool {
        let found = self
            .peek()
            .is_some_and(|t| t.kind != TokenKind::Comma && spellings.contains(&t.text));
        self.next += usize::from(found);
        found
    }

    fn error_at(&self, token: Option<Token<'_>>, message: &str) -> PlacementError {
        let (position, token) = match token {
            Some(t) => (t.position, format!("`{}`", t.text)),
            None => (self.end, "end of expression".to_owned()),
        };
        PlacementError::Expression {
            path: "expression".into(),
            position,
            token,
            message: message.into(),
        }
    }

    fn expression(&mut self, depth: usize) -> Result<Node, PlacementError> {
        let mut alternatives = vec![self.conjunction(depth)?];
        while self.eat(&["or", "||"]) {
            alternatives.push(self.conjunction(depth)?);
        }
        Ok(flatten(alternatives, Node::Any))
    }

    fn conjunction(&mut self, depth: usize) -> Result<Node, PlacementError> {
        let mut parts = vec![self.unary(depth)?];
        while self.eat(&["and", "&&"]) {
            parts.push(self.unary(depth)?);
        }
        Ok(flatten(parts, Node::All))
    }

    fn unary(&mut self, depth: usize) -> Result<Node, PlacementError> {
        if depth > MAX_NESTING {
            return Err(self.error_at(self.peek(), "expression nested too deeply"));
        }
        if self.eat(&["not", "!"]) {
            return Ok(Node::Not(Box::new(self.unary(depth + 1)?)));
        }
        if self.peek().is_some_and(|t| t.kind == TokenKind::Open) {
            self.advance();
            let inner = self.expression(depth + 1)?;
            return match self.advance() {
                Some(t) if t.kind == TokenKind::Close => Ok(inner),
                other => Err(self.error_at(other, "expected `)`")),
            };
        }
        self.term()
    }

    fn term(&mut self) -> Result<Node, PlacementError> {
        let token = self.advance();
        let subject = match token {
            Some(t) if t.kind == TokenKind::Word => parse_subject(t.text)
                .ok_or_else(|| self.error_at(token, "unknown subject (expected attribute:NAME, instanceId, ec2InstanceId or task:group)"))?,
            _ => return Err(self.error_at(token, "expected a subject such as attribute:NAME")),
        };
        let operator = self.advance();
        let word = operator
            .filter(|t| matches!(t.kind, TokenKind::Word | TokenKind::Symbol))
            .map(|t| t.text);
        let (test, negated) = match word {
            Some("==" | "equals") => (Test::Equals(self.argument()?), false),
            Some("!=" | "not_equals") => (Test::Equals(self.argument()?), true),
            Some("exists") => (Test::Exists, false),
            Some("not_exists") => (Test::Exists, true),
            Some("!") if self.eat(&["exists"]) => (Test::Exists, true),
            Some("in") => (Test::In(self.argument_list()?), false),
            Some("not_in") => (Test::In(self.argument_list()?), true),
            Some("=~" | "matches") => (Test::Matches(self.argument()?), false),
            Some(">") => (self.comparison(Comparison::Greater)?, false),
            Some(">=") => (self.comparison(Comparison::GreaterOrEqual)?, false),
            Some("<") => (self.comparison(Comparison::Less)?, false),
            Some("<=") => (self.comparison(Comparison::LessOrEqual)?, false),
            _ => {
                return Err(self.error_at(
                    operator,
                    "expected an operator such as ==, exists, in or =~",
                ))
            }
        };
        Ok(Node::Term {
            subject,
            test,
            negated,
        })
    }

    fn argument(&mut self) -> Result<String, PlacementError> {
        match self.advance() {
            Some(t) if t.kind == TokenKind::Word => Ok(t.text.to_owned()),
            other => Err(self.error_at(other, "expected a value")),
        }
    }

    /// `(a, b)` or, as AWS writes it, `[a, b]`: closed by the bracket
    /// that opened it.
    fn argument_list(&mut self) -> Result<Vec<String>, PlacementError> {
        let (close, expected) = match self.advance() {
            Some(t) if t.kind == TokenKind::Open => {
                (TokenKind::Close, "expected `,` or `)` in the list")
            }
            Some(t) if t.kind == TokenKind::OpenBracket => {
                (TokenKind::CloseBracket, "expected `,` or `]` in the list")
            }
            other => return Err(self.error_at(other, "expected `(` or `[` to open the list")),
        };
        let mut values = vec![self.argument()?];
        loop {
            match self.advance() {
                Some(t) if t.kind == TokenKind::Comma => values.push(self.argument()?),
                Some(t) if t.kind == close => return Ok(values),
                other => return Err(self.error_at(other, expected)),
            }
        }
    }

    fn comparison(&mut self, operator: Comparison) -> Result<Test, PlacementError> {
        let argument = self.argument()?;
        Ok(Test::Compare {
            operator,
            number: argument.parse().ok(),
            argument,
        })
    }
}

fn parse_subject(text: &str) -> Option<Subject> {
    match text {
        "instanceId" | "ec2InstanceId" => Some(Subject::InstanceId),
        "task:group" => Some(Subject::TaskGroup),
        _ => text
            .strip_prefix("attribute:")
            .filter(|name| !name.is_empty())
            .map(|name| Subject::Attribute(name.to_owned())),
    }
}

/// A lone operand needs no `All`/`Any` wrapper.
fn flatten(mut nodes: Vec<Node>, wrap: fn(Vec<Node>) -> Node) -> Node {
    if nodes.len() == 1 {
        nodes.remove(0)
    } else {
        wrap(nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{expr, fleet};
    use super::*;

    /// The ids of the fleet's instances the expression selects.
    fn members(source: &str) -> Vec<String> {
        let expr = expr(source);
        fleet()
            .into_iter()
            .filter(|i| expr.matches(i))
            .map(|i| i.id)
            .collect()
    }

    #[test]
    fn member_of_equality_and_existence() {
        assert_eq!(members("attribute:ecs.instance-type == t2.micro"), ["i-0a"]);
        assert_eq!(
            members("attribute:ecs.instance-type equals m5.large"),
            ["i-0b"]
        );
        assert_eq!(
            members("attribute:ecs.availability-zone != us-east-1a"),
            ["i-0b", "i-0c"]
        );
        assert_eq!(
            members("attribute:ecs.availability-zone not_equals us-east-1b"),
            ["i-0a", "i-0c"]
        );
        assert_eq!(
            members("attribute:ecs.cpu-architecture exists"),
            ["i-0a", "i-0b"]
        );
        assert_eq!(members("attribute:ecs.cpu-architecture !exists"), ["i-0c"]);
        assert_eq!(members("attribute:stage not_exists"), ["i-0b", "i-0c"]);
        assert_eq!(members("instanceId == i-0b"), ["i-0b"]);
        assert_eq!(members("ec2InstanceId != i-0b"), ["i-0a", "i-0c"]);
    }

    #[test]
    fn member_of_lists_and_wildcards() {
        assert_eq!(
            members("attribute:ecs.instance-type in (t2.micro, t3.small)"),
            ["i-0a", "i-0c"]
        );
        assert_eq!(
            members("attribute:ecs.instance-type not_in (t2.micro,t3.small)"),
            ["i-0b"]
        );
        assert_eq!(
            members("attribute:ecs.instance-type =~ t*"),
            ["i-0a", "i-0c"]
        );
        assert_eq!(
            members("attribute:ecs.instance-type matches *.*l*"),
            ["i-0b", "i-0c"]
        );
        // AWS's own spelling of a list: brackets.
        assert_eq!(
            members("attribute:ecs.instance-type in [t2.micro, t3.small]"),
            ["i-0a", "i-0c"]
        );
        assert_eq!(
            members("attribute:ecs.instance-type not_in [t2.micro,t3.small]"),
            ["i-0b"]
        );
        // A glob, not a regex: `.` is literal and the whole value must match.
        assert!(members("attribute:ecs.instance-type =~ t2").is_empty());
        assert!(members("attribute:ecs.instance-type =~ t2.micr.").is_empty());
    }

    #[test]
    fn member_of_comparisons_are_numeric_when_both_sides_are_numbers() {
        assert_eq!(members("attribute:disk-gb > 10"), ["i-0a", "i-0b"]);
        assert_eq!(members("attribute:disk-gb >= 20"), ["i-0a", "i-0b"]);
        assert_eq!(members("attribute:disk-gb < 20"), ["i-0c"]);
        assert_eq!(members("attribute:disk-gb <= 9.0"), ["i-0c"]);
        // Strings compare as strings.
        assert_eq!(members("attribute:ecs.instance-type < t"), ["i-0b"]);
        assert_eq!(
            members("attribute:ecs.availability-zone >= us-east-1b"),
            ["i-0b", "i-0c"]
        );
    }

    #[test]
    fn member_of_combines_with_and_or_not_and_parentheses() {
        assert_eq!(
            members("attribute:ecs.os-type == linux and attribute:disk-gb > 10"),
            ["i-0a", "i-0b"]
        );
        assert_eq!(
            members("attribute:stage exists || attribute:ecs.instance-type == t3.small"),
            ["i-0a", "i-0c"]
        );
        assert_eq!(members("not attribute:stage exists"), ["i-0b", "i-0c"]);
        assert_eq!(
            members("!(attribute:disk-gb > 10 && attribute:stage exists)"),
            ["i-0b", "i-0c"]
        );
        // `and` binds tighter than `or`...
        assert_eq!(
            members("instanceId == i-0c or instanceId == i-0a and attribute:disk-gb > 50"),
            ["i-0a", "i-0c"]
        );
        // ...unless parentheses say otherwise.
        assert_eq!(
            members("(instanceId == i-0c or instanceId == i-0a) and (attribute:disk-gb > 50)"),
            ["i-0a"]
        );
        // Keywords are only keywords where an operator or connective goes.
        let mut odd = fleet();
        odd[0].attributes.insert("word".into(), "and".into());
        assert!(expr("attribute:word == and").matches(&odd[0]));
    }

    #[test]
    fn glob_matching() {
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*b*c", "aXXbYYbc"));
        assert!(glob_matches("**a", "a"));
        assert!(!glob_matches("a*b", "acd"));
        assert!(!glob_matches("", "a"));
        assert!(glob_matches("t2.*", "t2.micro"));
    }

    #[test]
    fn expression_errors_name_the_position_and_token() {
        let error = |source: &str| match Expr::parse(source) {
            Err(PlacementError::Expression {
                position,
                token,
                message,
                ..
            }) => (position, token, message),
            other => panic!("{source:?}: {other:?}"),
        };
        assert_eq!(
            error("attribute:a == b and"),
            (
                21,
                "end of expression".into(),
                "expected a subject such as attribute:NAME".into()
            )
        );
        assert_eq!(
            error("attribute:a ~ b"),
            (13, "'~'".into(), "unknown operator".into())
        );
        assert_eq!(
            error("attribute:a is b"),
            (
                13,
                "`is`".into(),
                "expected an operator such as ==, exists, in or =~".into()
            )
        );
        assert_eq!(
            error("registeredAt > 2020"),
            (
                1,
                "`registeredAt`".into(),
                "unknown subject (expected attribute:NAME, instanceId, ec2InstanceId or task:group)".into()
            )
        );
        assert_eq!(
            error("(attribute:a exists"),
            (20, "end of expression".into(), "expected `)`".into())
        );
        assert_eq!(
            error("attribute:a in (x y)"),
            (19, "`y`".into(), "expected `,` or `)` in the list".into())
        );
        assert_eq!(
            error("attribute:a in x"),
            (
                16,
                "`x`".into(),
                "expected `(` or `[` to open the list".into()
            )
        );
        // A list closes with the bracket that opened it.
        assert_eq!(
            error("attribute:a in [x, y)"),
            (21, "`)`".into(), "expected `,` or `]` in the list".into())
        );
        assert_eq!(
            error("attribute:a in (x, y]"),
            (21, "`]`".into(), "expected `,` or `)` in the list".into())
        );
        assert_eq!(
            error("attribute:a in [x"),
            (
                18,
                "end of expression".into(),
                "expected `,` or `]` in the list".into()
            )
        );
        assert_eq!(
            error("attribute:a exists attribute:b exists"),
            (
                20,
                "`attribute:b`".into(),
                "expected and, or or the end".into()
            )
        );
        assert_eq!(error("").1, "end of expression");
        let deep = format!("{}attribute:a exists{}", "(".repeat(40), ")".repeat(40));
        assert_eq!(error(&deep).2, "expression nested too deeply");
        assert!(matches!(
            Expr::parse(&"x".repeat(2001)),
            Err(PlacementError::Invalid { .. })
        ));
        // Positions count characters, not bytes.
        assert_eq!(error("attribute:é ~ b").0, 13);
    }
}
