//! ECS task placement: choose a container instance for a task.
//!
//! Pure functions over a snapshot of container instances: no store, no I/O,
//! so the scheduler's decisions can be tested (and benchmarked) without root.
//!
//! The order is ECS's: drop instances that are not ACTIVE, lack CPU or
//! memory, or break a placement constraint; then let each placement strategy
//! in turn narrow the survivors to its favourites. `memberOf` constraints use
//! ECS's cluster query language, parsed here by [`Expr::parse`].

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde_json::Value;

/// ECS refuses longer lists; so do we, to keep placement cost bounded.
const MAX_STRATEGIES: usize = 5;
const MAX_CONSTRAINTS: usize = 10;
/// ECS's limit on a `memberOf` expression.
const MAX_EXPRESSION_LEN: usize = 2000;
/// Bounds the parser's recursion so a hostile expression cannot blow the stack.
const MAX_NESTING: usize = 32;

/// A placement input that ECS would refuse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// A JSON field is missing, mistyped or out of range; `path` names it the
    /// way the API caller wrote it, e.g. `placementStrategy[0].field`.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// A `memberOf` expression does not parse. `position` is the 1-based
    /// character column of `token`, the text the parser stumbled on.
    #[error("{path}: {message} at position {position} (found {token})")]
    Expression {
        path: String,
        position: usize,
        token: String,
        message: String,
    },
}

impl PlacementError {
    fn invalid(path: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    /// Puts `prefix` in front of the path, so errors from one list element
    /// name the element (`placementStrategy[2]` + `field`).
    fn within(mut self, prefix: &str) -> Self {
        let (Self::Invalid { path, .. } | Self::Expression { path, .. }) = &mut self;
        *path = if path.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix}.{path}")
        };
        self
    }
}

/// A container instance as placement sees it: what is left of it, and what
/// already runs there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Instance {
    pub arn: String,
    /// The host's instance id (`instanceId` / `ec2InstanceId` in ECS terms).
    pub id: String,
    pub remaining_cpu: i64,
    pub remaining_memory: i64,
    /// Built-in (`ecs.instance-type`, `ecs.availability-zone`, `ecs.os-type`,
    /// `ecs.cpu-architecture`) and custom attributes.
    pub attributes: BTreeMap<String, String>,
    /// The group of each task already on the instance (`family:web`,
    /// `service:api`...), one entry per task.
    pub task_groups: Vec<String>,
    /// `ACTIVE` or `DRAINING`; only ACTIVE instances take new tasks.
    pub status: String,
}

impl Instance {
    pub const ACTIVE: &'static str = "ACTIVE";

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }

    fn tasks_in_group(&self, group: &str) -> u32 {
        let count = self.task_groups.iter().filter(|g| *g == group).count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }
}

/// The resource a binpack strategy packs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Cpu,
    Memory,
}

/// What a spread strategy balances tasks across.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpreadField {
    /// One bucket per instance (`instanceId`, or its ECS alias `host`).
    InstanceId,
    /// One bucket per value of the attribute (`attribute:NAME`); instances
    /// without it share a bucket of their own.
    Attribute(String),
}

/// One ECS placement strategy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Prefer the instance with the least of the resource left.
    Binpack(Resource),
    /// Prefer the bucket holding the fewest tasks of the group.
    Spread(SpreadField),
    /// Pick at random among whatever is left.
    Random,
}

impl Strategy {
    /// Parses one `{"type": ..., "field": ...}` object; error paths are
    /// relative to it (`field`, `type`).
    pub fn from_json(value: &Value) -> Result<Self, PlacementError> {
        let object = value
            .as_object()
            .ok_or_else(|| PlacementError::invalid("", "must be an object"))?;
        let kind = required_str(object, "type")?;
        let field = optional_str(object, "field")?;
        match kind {
            "binpack" => match field {
                Some("cpu") => Ok(Self::Binpack(Resource::Cpu)),
                Some("memory") => Ok(Self::Binpack(Resource::Memory)),
                _ => Err(PlacementError::invalid(
                    "field",
                    "binpack needs cpu or memory",
                )),
            },
            "spread" => match field {
                Some("instanceId" | "host") => Ok(Self::Spread(SpreadField::InstanceId)),
                Some(f) => match f.strip_prefix("attribute:") {
                    Some(name) if !name.is_empty() => {
                        Ok(Self::Spread(SpreadField::Attribute(name.to_owned())))
                    }
                    _ => Err(PlacementError::invalid(
                        "field",
                        format!("spread needs instanceId, host or attribute:NAME, not {f:?}"),
                    )),
                },
                None => Err(PlacementError::invalid(
                    "field",
                    "spread needs instanceId, host or attribute:NAME",
                )),
            },
            // ECS ignores `field` for random, and so do we.
            "random" => Ok(Self::Random),
            other => Err(PlacementError::invalid(
                "type",
                format!("unknown strategy {other:?} (expected binpack, spread or random)"),
            )),
        }
    }

    /// Parses a whole `placementStrategy` array (absent or null: none).
    pub fn list_from_json(value: Option<&Value>) -> Result<Vec<Self>, PlacementError> {
        parse_list(value, "placementStrategy", MAX_STRATEGIES, Self::from_json)
    }
}

/// One ECS placement constraint.
#[derive(Clone, Debug, PartialEq)]
pub enum Constraint {
    /// No two tasks of the group on one instance.
    DistinctInstance,
    /// Only instances the expression selects.
    MemberOf(Expr),
}

impl Constraint {
    /// Parses one `{"type": ..., "expression": ...}` object.
    pub fn from_json(value: &Value) -> Result<Self, PlacementError> {
        let object = value
            .as_object()
            .ok_or_else(|| PlacementError::invalid("", "must be an object"))?;
        match required_str(object, "type")? {
            "distinctInstance" => Ok(Self::DistinctInstance),
            "memberOf" => {
                let source = optional_str(object, "expression")?.ok_or_else(|| {
                    PlacementError::invalid("expression", "memberOf needs an expression")
                })?;
                Expr::parse(source).map(Self::MemberOf)
            }
            other => Err(PlacementError::invalid(
                "type",
                format!("unknown constraint {other:?} (expected distinctInstance or memberOf)"),
            )),
        }
    }

    /// Parses a whole `placementConstraints` array (absent or null: none).
    pub fn list_from_json(value: Option<&Value>) -> Result<Vec<Self>, PlacementError> {
        parse_list(
            value,
            "placementConstraints",
            MAX_CONSTRAINTS,
            Self::from_json,
        )
    }
}

fn required_str<'v>(
    object: &'v serde_json::Map<String, Value>,
    key: &str,
) -> Result<&'v str, PlacementError> {
    optional_str(object, key)?.ok_or_else(|| PlacementError::invalid(key, "is required"))
}

fn optional_str<'v>(
    object: &'v serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<&'v str>, PlacementError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(PlacementError::invalid(key, "must be a string")),
    }
}

fn parse_list<T>(
    value: Option<&Value>,
    name: &str,
    max: usize,
    parse_one: impl Fn(&Value) -> Result<T, PlacementError>,
) -> Result<Vec<T>, PlacementError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(PlacementError::invalid(name, "must be an array")),
    };
    if items.len() > max {
        return Err(PlacementError::invalid(
            name,
            format!("at most {max} entries, got {}", items.len()),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_one(item).map_err(|e| e.within(&format!("{name}[{i}]"))))
        .collect()
}

// ---------------------------------------------------------------------------
// Cluster query language

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
    fn depends_on_tasks(&self) -> bool {
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
            '(' | ')' | ',' => {
                let kind = match c {
                    '(' => TokenKind::Open,
                    ')' => TokenKind::Close,
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
                    if c.is_whitespace() || matches!(c, '(' | ')' | ',') || is_symbol_char(c) {
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
/// term       := subject operator [argument | "(" argument ("," argument)* ")"]
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

    fn argument_list(&mut self) -> Result<Vec<String>, PlacementError> {
        match self.advance() {
            Some(t) if t.kind == TokenKind::Open => {}
            other => return Err(self.error_at(other, "expected `(` to open the list")),
        }
        let mut values = vec![self.argument()?];
        loop {
            match self.advance() {
                Some(t) if t.kind == TokenKind::Comma => values.push(self.argument()?),
                Some(t) if t.kind == TokenKind::Close => return Ok(values),
                other => return Err(self.error_at(other, "expected `,` or `)` in the list")),
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

// ---------------------------------------------------------------------------
// Placement

/// Chooses the instance for one task as `request` describes it, or `None`
/// when no instance qualifies.
///
/// After the strategies, ties go to the lowest index unless a `random`
/// strategy was given; `rng_seed` makes random choices reproducible.
pub fn place(
    instances: &[Instance],
    request: &Request<'_>,
    strategies: &[Strategy],
    rng_seed: u64,
) -> Option<usize> {
    Planner::new(instances, request, strategies, rng_seed).choose(request)
}

/// Places up to `count` tasks one after the other, each seeing the ones
/// before it: the chosen instance loses the resources and gains the task's
/// group. Returns the chosen indices in order; fewer than `count` means the
/// cluster ran out of room (resources only shrink, so the rest cannot fit).
pub fn place_many(
    instances: &mut [Instance],
    count: usize,
    request: &Request<'_>,
    strategies: &[Strategy],
    rng_seed: u64,
) -> Vec<usize> {
    let mut planner = Planner::new(instances, request, strategies, rng_seed);
    let mut placed = Vec::with_capacity(count);
    for _ in 0..count {
        let Some(chosen) = planner.choose(request) else {
            break;
        };
        planner.record(&mut instances[chosen], chosen, request);
        placed.push(chosen);
    }
    placed
}

/// One task to place: what it needs, its group (`service:web`,
/// `family:web`) and the constraints on where it may go.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// CPU units.
    pub need_cpu: i64,
    /// MiB.
    pub need_memory: i64,
    pub group: &'a str,
    pub constraints: &'a [Constraint],
}

impl<'a> Request<'a> {
    pub fn new(
        need_cpu: i64,
        need_memory: i64,
        group: &'a str,
        constraints: &'a [Constraint],
    ) -> Self {
        Self {
            need_cpu,
            need_memory,
            group,
            constraints,
        }
    }

    fn distinct_instance(&self) -> bool {
        self.constraints
            .iter()
            .any(|c| matches!(c, Constraint::DistinctInstance))
    }

    /// ACTIVE and selected by every `memberOf`: the part of eligibility that
    /// does not depend on resources.
    fn admits(&self, instance: &Instance) -> bool {
        instance.status == Instance::ACTIVE
            && self.constraints.iter().all(|c| match c {
                Constraint::DistinctInstance => true,
                Constraint::MemberOf(expr) => expr.matches(instance),
            })
    }
}

/// One step of the ranking the strategies define; lower ranks first.
#[derive(Clone, Copy)]
enum Rank {
    Remaining(Resource),
    /// Tasks of the group on the instance itself.
    GroupOnInstance,
    /// Tasks of the group in the instance's bucket of `spreads[i]`.
    GroupInBucket(usize),
}

/// Per-value task counts for one `spread` over an attribute.
struct SpreadIndex {
    bucket_of: Vec<u32>,
    tasks_in_bucket: Vec<u32>,
}

/// The little of an instance the scan reads, packed together: `Instance`
/// is large, and striding over it would miss the cache on every step.
#[derive(Clone, Copy)]
struct Slot {
    cpu: i64,
    memory: i64,
    group_tasks: u32,
    /// ACTIVE and selected by every `memberOf`.
    admitted: bool,
}

/// What placement keeps between tasks so each choice is a cheap linear scan:
/// no string comparisons, no allocation per instance.
struct Planner {
    ranks: Vec<Rank>,
    /// A random strategy ends the ranking: it leaves one candidate, so later
    /// strategies have nothing to narrow.
    random: bool,
    rng: SplitMix64,
    slots: Vec<Slot>,
    spreads: Vec<SpreadIndex>,
    distinct_instance: bool,
    /// Whether `Slot::admitted` must be refreshed after a placement.
    membership_depends_on_tasks: bool,
}

impl Planner {
    fn new(
        instances: &[Instance],
        request: &Request<'_>,
        strategies: &[Strategy],
        rng_seed: u64,
    ) -> Self {
        let mut ranks = Vec::new();
        let mut spreads = Vec::new();
        let mut random = false;
        for strategy in strategies {
            match strategy {
                Strategy::Binpack(resource) => ranks.push(Rank::Remaining(*resource)),
                Strategy::Spread(SpreadField::InstanceId) => ranks.push(Rank::GroupOnInstance),
                Strategy::Spread(SpreadField::Attribute(name)) => {
                    ranks.push(Rank::GroupInBucket(spreads.len()));
                    spreads.push(SpreadIndex::new(instances, name, request.group));
                }
                Strategy::Random => {
                    random = true;
                    break;
                }
            }
        }
        Self {
            ranks,
            random,
            rng: SplitMix64(rng_seed),
            slots: instances
                .iter()
                .map(|i| Slot {
                    cpu: i.remaining_cpu,
                    memory: i.remaining_memory,
                    group_tasks: i.tasks_in_group(request.group),
                    admitted: request.admits(i),
                })
                .collect(),
            spreads,
            distinct_instance: request.distinct_instance(),
            membership_depends_on_tasks: request.constraints.iter().any(|c| match c {
                Constraint::MemberOf(expr) => expr.depends_on_tasks(),
                Constraint::DistinctInstance => false,
            }),
        }
    }

    fn fits(&self, slot: &Slot, request: &Request<'_>) -> bool {
        slot.admitted
            && slot.cpu >= request.need_cpu
            && slot.memory >= request.need_memory
            && !(self.distinct_instance && slot.group_tasks > 0)
    }

    /// How `a` compares with `b` under the strategies; `Less` is preferred.
    fn compare(&self, a: usize, b: usize) -> Ordering {
        let (slot_a, slot_b) = (&self.slots[a], &self.slots[b]);
        for rank in &self.ranks {
            let ordering = match *rank {
                Rank::Remaining(Resource::Cpu) => slot_a.cpu.cmp(&slot_b.cpu),
                Rank::Remaining(Resource::Memory) => slot_a.memory.cmp(&slot_b.memory),
                Rank::GroupOnInstance => slot_a.group_tasks.cmp(&slot_b.group_tasks),
                Rank::GroupInBucket(s) => self.spreads[s]
                    .tasks_near(a)
                    .cmp(&self.spreads[s].tasks_near(b)),
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        Ordering::Equal
    }

    fn choose(&mut self, request: &Request<'_>) -> Option<usize> {
        let mut best: Option<usize> = None;
        let mut ties: u64 = 0;
        for index in 0..self.slots.len() {
            if !self.fits(&self.slots[index], request) {
                continue;
            }
            let Some(current) = best else {
                best = Some(index);
                ties = 1;
                continue;
            };
            match self.compare(index, current) {
                Ordering::Less => {
                    best = Some(index);
                    ties = 1;
                }
                // Reservoir sampling: each of the n tied instances ends up
                // chosen with probability 1/n, in one pass, without a list.
                Ordering::Equal if self.random => {
                    ties += 1;
                    if self.rng.below(ties) == 0 {
                        best = Some(index);
                    }
                }
                Ordering::Equal | Ordering::Greater => {}
            }
        }
        best
    }

    /// Books one task of the request's group onto `instances[index]`.
    fn record(&mut self, instance: &mut Instance, index: usize, request: &Request<'_>) {
        instance.remaining_cpu = instance.remaining_cpu.saturating_sub(request.need_cpu);
        instance.remaining_memory = instance
            .remaining_memory
            .saturating_sub(request.need_memory);
        instance.task_groups.push(request.group.to_owned());
        let slot = &mut self.slots[index];
        slot.cpu = instance.remaining_cpu;
        slot.memory = instance.remaining_memory;
        slot.group_tasks = slot.group_tasks.saturating_add(1);
        for spread in &mut self.spreads {
            let bucket = spread.bucket_of[index] as usize;
            spread.tasks_in_bucket[bucket] = spread.tasks_in_bucket[bucket].saturating_add(1);
        }
        if self.membership_depends_on_tasks {
            slot.admitted = request.admits(instance);
        }
    }
}

impl SpreadIndex {
    fn new(instances: &[Instance], attribute: &str, group: &str) -> Self {
        // Instances lacking the attribute share the `None` bucket.
        let mut buckets: BTreeMap<Option<&str>, u32> = BTreeMap::new();
        let mut tasks_in_bucket = Vec::new();
        let bucket_of = instances
            .iter()
            .map(|instance| {
                let next = u32::try_from(buckets.len()).unwrap_or(u32::MAX);
                let bucket = *buckets.entry(instance.attribute(attribute)).or_insert(next);
                if bucket as usize == tasks_in_bucket.len() {
                    tasks_in_bucket.push(0u32);
                }
                let tasks = &mut tasks_in_bucket[bucket as usize];
                *tasks = tasks.saturating_add(instance.tasks_in_group(group));
                bucket
            })
            .collect();
        Self {
            bucket_of,
            tasks_in_bucket,
        }
    }

    fn tasks_near(&self, index: usize) -> u32 {
        self.tasks_in_bucket[self.bucket_of[index] as usize]
    }
}

/// splitmix64: tiny, fast and good enough to break ties; seeded so a
/// placement can be replayed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0), by multiply-shift; the bias is
    /// negligible for tie counts.
    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

// ---------------------------------------------------------------------------
// Benchmark

/// Places `tasks` tasks (128 CPU units, 256 MiB, one group) over `instances`
/// simulated instances spread over three availability zones and three
/// instance types, with binpack(memory) then spread(availability zone).
/// Returns how many were placed and how long placing took (building the
/// snapshot is not timed).
pub fn bench(instances: usize, tasks: usize) -> (usize, Duration) {
    const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
    const TYPES: [(&str, i64, i64); 3] = [
        ("m5.xlarge", 4096, 16384),
        ("m5.2xlarge", 8192, 32768),
        ("c5.2xlarge", 8192, 16384),
    ];
    let mut fleet: Vec<Instance> = (0..instances)
        .map(|n| {
            let (instance_type, cpu, memory) = TYPES[n % TYPES.len()];
            let attributes = [
                ("ecs.availability-zone", ZONES[(n / 7) % ZONES.len()]),
                ("ecs.instance-type", instance_type),
                ("ecs.os-type", "linux"),
                ("ecs.cpu-architecture", "x86_64"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
            Instance {
                arn: format!("arn:aws:ecs:us-east-1:000000000000:container-instance/bench/{n}"),
                id: format!("i-{n:017x}"),
                remaining_cpu: cpu,
                remaining_memory: memory,
                attributes,
                task_groups: Vec::new(),
                status: Instance::ACTIVE.to_owned(),
            }
        })
        .collect();
    let strategies = [
        Strategy::Binpack(Resource::Memory),
        Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
    ];
    let started = Instant::now();
    let placed = place_many(
        &mut fleet,
        tasks,
        &Request::new(128, 256, "family:bench", &[]),
        &strategies,
        0,
    );
    (placed.len(), started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn instance(id: &str, cpu: i64, memory: i64, attributes: &[(&str, &str)]) -> Instance {
        Instance {
            arn: format!("arn:aws:ecs:us-east-1:000000000000:container-instance/test/{id}"),
            id: id.to_owned(),
            remaining_cpu: cpu,
            remaining_memory: memory,
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            task_groups: Vec::new(),
            status: Instance::ACTIVE.to_owned(),
        }
    }

    fn zoned(id: &str, zone: &str) -> Instance {
        instance(id, 4096, 8192, &[("ecs.availability-zone", zone)])
    }

    fn expr(source: &str) -> Expr {
        match Expr::parse(source) {
            Ok(expr) => expr,
            Err(e) => panic!("{source:?} should parse: {e}"),
        }
    }

    fn binpack_memory() -> Vec<Strategy> {
        vec![Strategy::Binpack(Resource::Memory)]
    }

    #[test]
    fn binpack_picks_the_fullest_instance_that_fits() {
        let instances = [
            instance("roomy", 4096, 8192, &[]),
            instance("too-full", 4096, 256, &[]),
            instance("snug", 4096, 1024, &[]),
            instance("middling", 4096, 2048, &[]),
        ];
        let chosen = place(
            &instances,
            &Request::new(256, 512, "g", &[]),
            &binpack_memory(),
            0,
        );
        assert_eq!(chosen, Some(2));

        let by_cpu = [instance("a", 1024, 512, &[]), instance("b", 512, 8192, &[])];
        let cpu = [Strategy::Binpack(Resource::Cpu)];
        assert_eq!(
            place(&by_cpu, &Request::new(256, 512, "g", &[]), &cpu, 0),
            Some(1)
        );
    }

    #[test]
    fn spread_over_availability_zones_balances_three_zones() {
        let mut instances = vec![
            zoned("a1", "us-east-1a"),
            zoned("a2", "us-east-1a"),
            zoned("a3", "us-east-1a"),
            zoned("b1", "us-east-1b"),
            zoned("c1", "us-east-1c"),
            zoned("c2", "us-east-1c"),
        ];
        let spread = [Strategy::Spread(SpreadField::Attribute(
            "ecs.availability-zone".into(),
        ))];
        let placed = place_many(
            &mut instances,
            9,
            &Request::new(128, 128, "service:web", &[]),
            &spread,
            0,
        );
        assert_eq!(placed.len(), 9);
        let mut per_zone = BTreeMap::new();
        for &index in &placed {
            let zone = instances[index].attribute("ecs.availability-zone");
            *per_zone.entry(zone).or_insert(0) += 1;
        }
        assert_eq!(per_zone.values().copied().collect::<Vec<_>>(), [3, 3, 3]);
        // The one instance in zone b took all of that zone's share.
        assert_eq!(instances[3].task_groups.len(), 3);
    }

    #[test]
    fn spread_counts_tasks_already_running_and_ignores_other_groups() {
        let mut busy = zoned("a1", "us-east-1a");
        busy.task_groups = vec!["service:web".into(), "service:web".into()];
        let mut other_group = zoned("b1", "us-east-1b");
        other_group.task_groups = vec!["service:db".into(); 5];
        let instances = [busy, other_group, zoned("c1", "us-east-1c")];
        let spread = [Strategy::Spread(SpreadField::Attribute(
            "ecs.availability-zone".into(),
        ))];
        // Zones b and c both have no web tasks; ties go to the lowest index.
        assert_eq!(
            place(
                &instances,
                &Request::new(1, 1, "service:web", &[]),
                &spread,
                0
            ),
            Some(1)
        );
    }

    #[test]
    fn spread_instance_id_puts_one_task_on_each_before_doubling_up() {
        let mut instances: Vec<_> = (0..4)
            .map(|n| instance(&format!("i-{n}"), 4096, 8192, &[]))
            .collect();
        instances[0].task_groups.push("g".into());
        let spread = [Strategy::Spread(SpreadField::InstanceId)];
        let placed = place_many(&mut instances, 7, &Request::new(1, 1, "g", &[]), &spread, 0);
        assert_eq!(placed[..3], [1, 2, 3]);
        assert!(instances.iter().all(|i| i.task_groups.len() == 2));
    }

    #[test]
    fn binpack_then_spread_breaks_binpack_ties_by_zone() {
        let mut full_a = zoned("a1", "us-east-1a");
        full_a.task_groups.push("g".into());
        let instances = [full_a, zoned("a2", "us-east-1a"), zoned("b1", "us-east-1b")];
        let strategies = [
            Strategy::Binpack(Resource::Memory),
            Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
        ];
        assert_eq!(
            place(&instances, &Request::new(1, 1, "g", &[]), &strategies, 0),
            Some(2)
        );
    }

    #[test]
    fn random_is_deterministic_by_seed_and_only_picks_fitting_instances() {
        let instances: Vec<_> = (0..10)
            .map(|n| {
                let memory = if n % 3 == 0 { 100 } else { 4096 };
                instance(&format!("i-{n}"), 4096, memory, &[])
            })
            .collect();
        let random = [Strategy::Random];
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let first = place(&instances, &Request::new(1, 512, "g", &[]), &random, seed);
            assert_eq!(
                first,
                place(&instances, &Request::new(1, 512, "g", &[]), &random, seed)
            );
            let Some(index) = first else {
                panic!("something fits");
            };
            assert_ne!(index % 3, 0, "instance {index} lacks memory");
            seen.insert(index);
        }
        assert_eq!(
            seen.len(),
            6,
            "every fitting instance gets picked: {seen:?}"
        );

        let mut one = instances.clone();
        let mut two = instances.clone();
        assert_eq!(
            place_many(&mut one, 20, &Request::new(1, 512, "g", &[]), &random, 42),
            place_many(&mut two, 20, &Request::new(1, 512, "g", &[]), &random, 42),
        );
    }

    #[test]
    fn random_after_binpack_only_picks_among_the_fullest() {
        let instances = [
            instance("a", 4096, 1024, &[]),
            instance("b", 4096, 4096, &[]),
            instance("c", 4096, 1024, &[]),
        ];
        let strategies = [Strategy::Binpack(Resource::Memory), Strategy::Random];
        for seed in 0..50 {
            let chosen = place(&instances, &Request::new(1, 1, "g", &[]), &strategies, seed);
            assert!(matches!(chosen, Some(0 | 2)), "{chosen:?}");
        }
    }

    #[test]
    fn distinct_instance_avoids_instances_running_the_group() {
        let mut taken = instance("taken", 4096, 1024, &[]);
        taken.task_groups.push("family:web".into());
        let mut instances = vec![
            taken,
            instance("free", 4096, 8192, &[]),
            instance("spare", 4096, 8192, &[]),
        ];
        let distinct = [Constraint::DistinctInstance];
        assert_eq!(
            place(
                &instances,
                &Request::new(1, 1, "family:web", &distinct),
                &binpack_memory(),
                0
            ),
            Some(1)
        );
        // Another group may share the instance.
        assert_eq!(
            place(
                &instances,
                &Request::new(1, 1, "family:db", &distinct),
                &binpack_memory(),
                0
            ),
            Some(0)
        );
        // Two more fit, one on each free instance; then there is nowhere left.
        let placed = place_many(
            &mut instances,
            5,
            &Request::new(1, 1, "family:web", &distinct),
            &[],
            0,
        );
        assert_eq!(placed, [1, 2]);
    }

    #[test]
    fn place_many_books_resources_and_groups_as_it_goes() {
        let mut instances = vec![
            instance("small", 1024, 1024, &[]),
            instance("large", 1024, 4096, &[]),
        ];
        let placed = place_many(
            &mut instances,
            10,
            &Request::new(256, 512, "g", &[]),
            &binpack_memory(),
            0,
        );
        // Binpack fills the small one first; CPU (4 x 256 per instance) is
        // what runs out in the end.
        assert_eq!(placed, [0, 0, 1, 1, 1, 1]);
        assert_eq!(
            (instances[0].remaining_cpu, instances[0].remaining_memory),
            (512, 0)
        );
        assert_eq!(
            (instances[1].remaining_cpu, instances[1].remaining_memory),
            (0, 2048)
        );
        assert_eq!(instances[1].task_groups, vec!["g"; 4]);
        assert_eq!(
            place(&instances, &Request::new(256, 512, "g", &[]), &[], 0),
            None
        );
    }

    #[test]
    fn draining_instances_are_skipped() {
        let mut draining = instance("draining", 4096, 512, &[]);
        draining.status = "DRAINING".into();
        let instances = [draining, instance("active", 4096, 8192, &[])];
        assert_eq!(
            place(
                &instances,
                &Request::new(1, 1, "g", &[]),
                &binpack_memory(),
                0
            ),
            Some(1)
        );
        assert_eq!(
            place(&instances[..1], &Request::new(1, 1, "g", &[]), &[], 0),
            None
        );
    }

    #[test]
    fn nothing_fits_gives_none() {
        let instances = [instance("a", 256, 8192, &[]), instance("b", 4096, 256, &[])];
        assert_eq!(
            place(
                &instances,
                &Request::new(512, 512, "g", &[]),
                &binpack_memory(),
                0
            ),
            None
        );
        assert_eq!(place(&[], &Request::new(1, 1, "g", &[]), &[], 0), None);
        let member = [Constraint::MemberOf(expr(
            "attribute:ecs.os-type == windows",
        ))];
        let roomy = [instance("c", 4096, 8192, &[("ecs.os-type", "linux")])];
        assert_eq!(
            place(&roomy, &Request::new(1, 1, "g", &member), &[], 0),
            None
        );
    }

    fn fleet() -> Vec<Instance> {
        vec![
            instance(
                "i-0a",
                4096,
                8192,
                &[
                    ("ecs.instance-type", "t2.micro"),
                    ("ecs.availability-zone", "us-east-1a"),
                    ("ecs.os-type", "linux"),
                    ("ecs.cpu-architecture", "x86_64"),
                    ("disk-gb", "100"),
                    ("stage", "prod"),
                ],
            ),
            instance(
                "i-0b",
                4096,
                8192,
                &[
                    ("ecs.instance-type", "m5.large"),
                    ("ecs.availability-zone", "us-east-1b"),
                    ("ecs.os-type", "linux"),
                    ("ecs.cpu-architecture", "arm64"),
                    ("disk-gb", "20"),
                ],
            ),
            instance(
                "i-0c",
                4096,
                8192,
                &[
                    ("ecs.instance-type", "t3.small"),
                    ("ecs.availability-zone", "us-east-1c"),
                    ("ecs.os-type", "linux"),
                    ("disk-gb", "9"),
                ],
            ),
        ]
    }

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
    fn member_of_task_group_sees_placements_as_they_happen() {
        // Affinity: only where a `service:db` task runs, and each placed task
        // must not make the next one see stale state.
        let mut instances = fleet();
        instances[1].task_groups.push("service:db".into());
        let affinity = [Constraint::MemberOf(expr("task:group == service:db"))];
        let placed = place_many(
            &mut instances,
            2,
            &Request::new(1, 1, "service:web", &affinity),
            &[],
            0,
        );
        assert_eq!(placed, [1, 1]);

        // Anti-affinity with itself: one task, and then nowhere.
        let mut instances = fleet();
        let alone = [Constraint::MemberOf(expr("not task:group == service:web"))];
        let placed = place_many(
            &mut instances,
            5,
            &Request::new(1, 1, "service:web", &alone),
            &[],
            0,
        );
        assert_eq!(placed, [0, 1, 2]);
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
    fn strategies_parse_from_ecs_json() {
        let strategies = Strategy::list_from_json(Some(&json!([
            {"type": "binpack", "field": "memory"},
            {"type": "binpack", "field": "cpu"},
            {"type": "spread", "field": "attribute:ecs.availability-zone"},
            {"type": "spread", "field": "instanceId"},
            {"type": "random"},
        ])));
        assert_eq!(
            strategies,
            Ok(vec![
                Strategy::Binpack(Resource::Memory),
                Strategy::Binpack(Resource::Cpu),
                Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
                Strategy::Spread(SpreadField::InstanceId),
                Strategy::Random,
            ])
        );
        assert_eq!(Strategy::list_from_json(None), Ok(vec![]));
        assert_eq!(Strategy::list_from_json(Some(&Value::Null)), Ok(vec![]));
    }

    #[test]
    fn strategy_errors_name_the_field() {
        let error = |value: Value| match Strategy::list_from_json(Some(&value)) {
            Err(e) => e.to_string(),
            Ok(s) => panic!("{value} parsed as {s:?}"),
        };
        assert_eq!(
            error(json!([{"type": "binpack", "field": "disk"}])),
            "placementStrategy[0].field: binpack needs cpu or memory"
        );
        assert_eq!(
            error(json!([{"type": "random"}, {"type": "spread"}])),
            "placementStrategy[1].field: spread needs instanceId, host or attribute:NAME"
        );
        assert_eq!(
            error(json!([{"type": "spread", "field": "attribute:"}])),
            "placementStrategy[0].field: spread needs instanceId, host or attribute:NAME, not \"attribute:\""
        );
        assert_eq!(
            error(json!([{"type": "pack"}])),
            "placementStrategy[0].type: unknown strategy \"pack\" (expected binpack, spread or random)"
        );
        assert_eq!(
            error(json!([{"field": "cpu"}])),
            "placementStrategy[0].type: is required"
        );
        assert_eq!(
            error(json!([{"type": 3}])),
            "placementStrategy[0].type: must be a string"
        );
        assert_eq!(
            error(json!(["binpack"])),
            "placementStrategy[0]: must be an object"
        );
        assert_eq!(
            error(json!({"type": "random"})),
            "placementStrategy: must be an array"
        );
        assert_eq!(
            error(Value::Array(vec![json!({"type": "random"}); 6])),
            "placementStrategy: at most 5 entries, got 6"
        );
    }

    #[test]
    fn constraints_parse_from_ecs_json() {
        let constraints = Constraint::list_from_json(Some(&json!([
            {"type": "distinctInstance"},
            {"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t2.*"},
        ])));
        let Ok(constraints) = constraints else {
            panic!("{constraints:?}");
        };
        assert_eq!(constraints[0], Constraint::DistinctInstance);
        let Constraint::MemberOf(expr) = &constraints[1] else {
            panic!("{:?}", constraints[1]);
        };
        assert_eq!(expr.to_string(), "attribute:ecs.instance-type =~ t2.*");
        assert!(expr.matches(&fleet()[0]));

        let error =
            |value: Value| Constraint::list_from_json(Some(&value)).map_err(|e| e.to_string());
        assert_eq!(
            error(json!([{"type": "memberOf"}])),
            Err("placementConstraints[0].expression: memberOf needs an expression".into())
        );
        assert_eq!(
            error(json!([{"type": "distinctInstance"}, {"type": "memberOf", "expression": "attribute:x =="}])),
            Err("placementConstraints[1].expression: expected a value at position 15 (found end of expression)".into())
        );
        assert_eq!(
            error(json!([{"type": "sameInstance"}])),
            Err("placementConstraints[0].type: unknown constraint \"sameInstance\" (expected distinctInstance or memberOf)".into())
        );
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
            (16, "`x`".into(), "expected `(` to open the list".into())
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

    #[test]
    fn bench_places_every_task_it_has_room_for() {
        let (placed, _elapsed) = bench(30, 300);
        assert_eq!(placed, 300);
        // One of each instance type holds 32 + 64 + 64 such tasks.
        let (placed, _) = bench(3, 10_000);
        assert_eq!(placed, 160);
    }
}
