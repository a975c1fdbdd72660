//! aws's shorthand syntax for structured flags (`name=x,value=y`,
//! `key=[a,b]`, `k={a=1}`, quoted values), as awscli's shorthand.py
//! parses it, read and re-expressed. Purely syntactic: every value is a
//! string here; the request type turns them into numbers, booleans and
//! lists (`input::coerce`), as aws does with its model.

use serde_json::{Map, Value};

/// Where and why a shorthand value does not parse.
#[derive(Debug, PartialEq, Eq)]
pub struct ShorthandError {
    pub message: String,
}

impl std::fmt::Display for ShorthandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// `a=b,c=d` as an object of the keys.
pub fn parse(text: &str) -> Result<Value, ShorthandError> {
    let mut p = Parser {
        chars: text.chars().collect(),
        at: 0,
    };
    p.parameter()
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

/// Characters a key may have.
fn key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.#/:".contains(c)
}

/// The first character of an unquoted value: not blank, a quote, `,`,
/// `=`, `[` or `{`.
fn start_char(c: char) -> bool {
    !(c.is_whitespace() || c.is_control() || "\"',=[{".contains(c))
}

/// The rest of a value that starts a list (`k=a,...`) or stands alone:
/// it ends at a quote, `,`, `]` or `}`.
fn first_follow(c: char) -> bool {
    c.is_whitespace() || !(c.is_control() || "\"',]}".contains(c))
}

/// The rest of a list's later value: it ends at a quote, `,` or `=` (a
/// `k=` there is the next key, not a value).
fn second_follow(c: char) -> bool {
    c.is_whitespace() || !(c.is_control() || "\"',=".contains(c))
}

impl Parser {
    fn current(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn error(&self, expected: &str) -> ShorthandError {
        let found = self
            .current()
            .map_or_else(|| "the end".to_string(), |c| format!("{c:?}"));
        ShorthandError {
            message: format!(
                "expected {expected} at column {}, found {found}",
                self.at + 1
            ),
        }
    }

    fn whitespace(&mut self) {
        while self.current().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn expect(&mut self, c: char, skip_whitespace: bool) -> Result<(), ShorthandError> {
        if skip_whitespace {
            self.whitespace();
        }
        if self.current() != Some(c) {
            return Err(self.error(&format!("{c:?}")));
        }
        self.at += 1;
        if skip_whitespace {
            self.whitespace();
        }
        Ok(())
    }

    /// parameter = keyval *("," keyval)
    fn parameter(&mut self) -> Result<Value, ShorthandError> {
        let mut params = Map::new();
        let (key, value) = self.keyval()?;
        params.insert(key, value);
        while self.at < self.chars.len() {
            self.expect(',', true)?;
            let start = self.at;
            let (key, value) = self.keyval()?;
            if params.contains_key(&key) {
                return Err(ShorthandError {
                    message: format!(
                        "key {key:?} given twice (column {}): separate list elements by a space, not a comma",
                        start + 1
                    ),
                });
            }
            params.insert(key, value);
        }
        Ok(Value::Object(params))
    }

    fn keyval(&mut self) -> Result<(String, Value), ShorthandError> {
        let key = self.key();
        self.expect('=', true)?;
        Ok((key, self.values()?))
    }

    fn key(&mut self) -> String {
        let start = self.at;
        while self.current().is_some_and(key_char) {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    /// values = csv-list / explicit-list / hash-literal
    fn values(&mut self) -> Result<Value, ShorthandError> {
        match self.current() {
            None => Ok(Value::String(String::new())),
            Some('[') => self.explicit_list(),
            Some('{') => self.hash_literal(),
            Some(_) => self.csv_value(),
        }
    }

    /// `k=a` is "a"; `k=a,b` is ["a", "b"], up to the next `k2=`.
    fn csv_value(&mut self) -> Result<Value, ShorthandError> {
        let first = self.first_value()?;
        self.whitespace();
        if self.current() != Some(',') {
            return Ok(first);
        }
        self.expect(',', true)?;
        let mut list = vec![first];
        loop {
            match self.second_value().and_then(|v| {
                self.whitespace();
                if self.current().is_some() {
                    self.expect(',', true)?;
                }
                Ok(v)
            }) {
                Ok(v) => {
                    list.push(v);
                    if self.current().is_none() {
                        break;
                    }
                }
                Err(e) => {
                    if self.current().is_none() {
                        return Err(e);
                    }
                    // `k=a,b,c=d`: c was the next key; back to its comma.
                    while self.at > 0 && self.current() != Some(',') {
                        self.at -= 1;
                    }
                    break;
                }
            }
        }
        Ok(if list.len() == 1 {
            list.swap_remove(0)
        } else {
            Value::Array(list)
        })
    }

    /// explicit-list = "[" [value *("," value)] "]"
    fn explicit_list(&mut self) -> Result<Value, ShorthandError> {
        self.expect('[', true)?;
        let mut values = Vec::new();
        while self.current() != Some(']') {
            values.push(self.explicit_value()?);
            self.whitespace();
            if self.current() != Some(']') {
                self.expect(',', false)?;
                self.whitespace();
            }
        }
        self.expect(']', false)?;
        Ok(Value::Array(values))
    }

    fn explicit_value(&mut self) -> Result<Value, ShorthandError> {
        match self.current() {
            Some('[') => self.explicit_list(),
            Some('{') => self.hash_literal(),
            _ => self.first_value(),
        }
    }

    /// hash-literal = "{" keyval *("," keyval) "}"
    fn hash_literal(&mut self) -> Result<Value, ShorthandError> {
        self.expect('{', true)?;
        let mut map = Map::new();
        while self.current() != Some('}') {
            let key = self.key();
            self.expect('=', true)?;
            let v = self.explicit_value()?;
            self.whitespace();
            if self.current() != Some('}') {
                self.expect(',', false)?;
                self.whitespace();
            }
            map.insert(key, v);
        }
        self.expect('}', false)?;
        Ok(Value::Object(map))
    }

    fn first_value(&mut self) -> Result<Value, ShorthandError> {
        match self.current() {
            Some(q @ ('\'' | '"')) => self.quoted(q),
            _ => Ok(Value::String(self.word(first_follow))),
        }
    }

    fn second_value(&mut self) -> Result<Value, ShorthandError> {
        match self.current() {
            Some(q @ ('\'' | '"')) => self.quoted(q),
            Some(c) if start_char(c) || self.escaped_comma() => {
                Ok(Value::String(self.word(second_follow)))
            }
            _ => Err(self.error("a value")),
        }
    }

    fn escaped_comma(&self) -> bool {
        self.current() == Some('\\') && self.chars.get(self.at + 1) == Some(&',')
    }

    /// An unquoted value (maybe empty): `\,` is a comma in it; trailing
    /// blanks are dropped.
    fn word(&mut self, follow: fn(char) -> bool) -> String {
        let mut out = String::new();
        let mut first = true;
        while let Some(c) = self.current() {
            if self.escaped_comma() {
                out.push(',');
                self.at += 2;
            } else if (first && start_char(c)) || (!first && follow(c)) {
                out.push(c);
                self.at += 1;
            } else {
                break;
            }
            first = false;
        }
        out.trim_end().to_string()
    }

    /// 'a,b' or "a,b": `\'` (`\"`) is the quote, `\\` a backslash.
    fn quoted(&mut self, quote: char) -> Result<Value, ShorthandError> {
        let start = self.at;
        self.at += 1;
        let mut raw = String::new();
        loop {
            match self.current() {
                None => {
                    self.at = start;
                    return Err(self.error(&format!("a closing {quote}")));
                }
                Some('\\') if self.chars.get(self.at + 1) == Some(&quote) => {
                    raw.push('\\');
                    raw.push(quote);
                    self.at += 2;
                }
                Some(c) if c == quote => {
                    self.at += 1;
                    break;
                }
                Some(c) => {
                    raw.push(c);
                    self.at += 1;
                }
            }
        }
        let text = raw
            .replace(&format!("\\{quote}"), &quote.to_string())
            .replace("\\\\", "\\");
        Ok(Value::String(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(text: &str) -> Value {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn parses_as_aws_does() {
        assert_eq!(ok("name=x,value=y"), json!({"name": "x", "value": "y"}));
        assert_eq!(ok("a=b,c"), json!({"a": ["b", "c"]}));
        assert_eq!(
            ok("foo=a,b,c=d,e=f"),
            json!({"foo": ["a", "b"], "c": "d", "e": "f"})
        );
        assert_eq!(
            ok("k=[a, b],j={x=1,y=[2,3]}"),
            json!({"k": ["a", "b"], "j": {"x": "1", "y": ["2", "3"]}})
        );
        assert_eq!(
            ok("type=spread,field=attribute:ecs.availability-zone"),
            json!({"type": "spread", "field": "attribute:ecs.availability-zone"})
        );
        assert_eq!(ok("k='a,b',j=\"it's\""), json!({"k": "a,b", "j": "it's"}));
        assert_eq!(ok(r"k=a\,b"), json!({"k": "a,b"}));
        assert_eq!(ok("k="), json!({"k": ""}));
        assert_eq!(ok("k = v w , j=x"), json!({"k": "v w", "j": "x"}));
        assert_eq!(
            ok("expression=attribute:ecs.instance-type =~ t2.*"),
            json!({"expression": "attribute:ecs.instance-type =~ t2.*"})
        );
        assert_eq!(ok("k=[]"), json!({"k": []}));
        assert_eq!(ok("k=a,b c,d"), json!({"k": ["a", "b c", "d"]}));
        assert_eq!(ok("a=x y,b=[c d]"), json!({"a": "x y", "b": ["c d"]}));
    }

    #[test]
    fn bad_shorthand_says_where() {
        assert_eq!(
            parse("team").unwrap_err().message,
            "expected '=' at column 5, found the end"
        );
        assert!(parse("a=b,a=c")
            .unwrap_err()
            .message
            .starts_with("key \"a\" given twice"));
        assert!(parse("k='open")
            .unwrap_err()
            .message
            .starts_with("expected a closing '"));
        assert!(parse("k=[a,b")
            .unwrap_err()
            .message
            .contains("found the end"));
        assert!(parse("k={a=1").is_err());
    }

    /// Whatever the text, an answer and no panic (user input).
    #[test]
    fn any_text_parses_or_errs() {
        let alphabet: Vec<char> = "ab=,[]{}'\"\\ :\t\né".chars().collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut text = String::new();
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            for _ in 0..(seed >> 60) + 1 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                text.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            let _ = parse(&text);
        }
    }
}
