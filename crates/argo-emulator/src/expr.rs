//! The subset of expr-lang (github.com/expr-lang/expr) that `retryStrategy.expression` uses,
//! plus the govaluate reading of step `when` clauses.
//!
//! Argo evaluates retry expressions with `argoexpr.EvalBool` over the scope built by
//! `buildRetryStrategyLocalScope` (every `lastRetry.*` value is a string) and the functions of
//! `util/expr/env` (`asInt` = expr's `int`, `asFloat` = expr's `float`). Anything outside the
//! subset is an error naming the construct, never a silent `false`.

use std::collections::BTreeMap;

/// A value of the expression language.
#[derive(Clone, Debug, PartialEq)]
enum Val {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Val>),
}

impl Val {
    fn kind(&self) -> &'static str {
        match self {
            Val::Nil => "nil",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Float(_) => "float64",
            Val::Str(_) => "string",
            Val::List(_) => "array",
        }
    }
    fn num(&self) -> Option<f64> {
        match self {
            Val::Int(i) => Some(*i as f64),
            Val::Float(f) => Some(*f),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(String),
    Str(String),
    Ident(String),
    Op(&'static str),
}

const OPS: [&str; 17] = [
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")", "[", "]", ",", ".", "+", "-",
];

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' {
            let (s, next) = string_literal(&chars, i)?;
            toks.push(Tok::Str(s));
            i = next;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            toks.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            toks.push(Tok::Ident(chars[start..i].iter().collect()));
        } else if let Some(op) = OPS.iter().find(|op| src_at(&chars, i).starts_with(**op)) {
            toks.push(Tok::Op(op));
            i += op.len();
        } else {
            return Err(format!(
                "unexpected character {c:?} (not in the emulated expr-lang subset)"
            ));
        }
    }
    Ok(toks)
}

fn src_at(chars: &[char], i: usize) -> String {
    chars[i..chars.len().min(i + 2)].iter().collect()
}

/// A quoted literal with Go's escapes (expr-lang unquotes both quote styles the same way).
fn string_literal(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let quote = chars[start];
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if c == quote {
            return Ok((out, i + 1));
        }
        if c != '\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = *chars.get(i + 1).ok_or("unterminated escape")?;
        i += 2;
        let simple = match e {
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'v' => Some('\x0b'),
            '\\' | '"' | '\'' => Some(e),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            continue;
        }
        let digits = match e {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            _ => return Err(format!("invalid escape sequence \\{e} in string literal")),
        };
        let hex: String = chars
            .get(i..i + digits)
            .ok_or("short escape")?
            .iter()
            .collect();
        let code =
            u32::from_str_radix(&hex, 16).map_err(|_| format!("invalid escape \\{e}{hex}"))?;
        out.push(char::from_u32(code).ok_or(format!("invalid code point \\{e}{hex}"))?);
        i += digits;
    }
    Err("unterminated string literal".to_owned())
}

#[derive(Debug)]
enum Ast {
    Lit(Val),
    Var(String),
    Not(Box<Ast>),
    Neg(Box<Ast>),
    Bin(&'static str, Box<Ast>, Box<Ast>),
    Call(String, Vec<Ast>),
    List(Vec<Ast>),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    /// govaluate mode (`when`): an unknown bare name is the string of its own text.
    names_are_strings: bool,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn eat_op(&mut self, op: &str) -> bool {
        let hit = matches!(self.peek(), Some(Tok::Op(o)) if *o == op);
        self.pos += usize::from(hit);
        hit
    }
    fn eat_word(&mut self, word: &str) -> bool {
        let hit = matches!(self.peek(), Some(Tok::Ident(w)) if w == word);
        self.pos += usize::from(hit);
        hit
    }
    fn expect(&mut self, op: &str) -> Result<(), String> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(format!("expected `{op}`, found {:?}", self.peek()))
        }
    }
    fn or(&mut self) -> Result<Ast, String> {
        let mut left = self.and()?;
        while self.eat_op("||") || self.eat_word("or") {
            left = Ast::Bin("||", Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Ast, String> {
        let mut left = self.comparison()?;
        while self.eat_op("&&") || self.eat_word("and") {
            left = Ast::Bin("&&", Box::new(left), Box::new(self.comparison()?));
        }
        Ok(left)
    }
    fn comparison(&mut self) -> Result<Ast, String> {
        let mut left = self.unary()?;
        loop {
            let op = ["==", "!=", "<=", ">=", "<", ">"]
                .into_iter()
                .find(|op| self.eat_op(op));
            let op = match op {
                Some(op) => op,
                None if self.eat_word("matches") => "matches",
                None if self.eat_word("in") => "in",
                None if self.eat_word("contains") => "contains",
                None if self.eat_word("startsWith") => "startsWith",
                None if self.eat_word("endsWith") => "endsWith",
                None => return Ok(left),
            };
            left = Ast::Bin(op, Box::new(left), Box::new(self.unary()?));
        }
    }
    fn unary(&mut self) -> Result<Ast, String> {
        if self.eat_op("!") || self.eat_word("not") {
            return Ok(Ast::Not(Box::new(self.unary()?)));
        }
        if self.eat_op("-") {
            return Ok(Ast::Neg(Box::new(self.unary()?)));
        }
        self.primary()
    }
    fn primary(&mut self) -> Result<Ast, String> {
        let tok = self.peek().cloned().ok_or("unexpected end of expression")?;
        self.pos += 1;
        match tok {
            Tok::Num(n) if n.contains('.') => n
                .parse()
                .map(|f| Ast::Lit(Val::Float(f)))
                .map_err(|_| format!("bad number {n}")),
            Tok::Num(n) => n
                .parse()
                .map(|i| Ast::Lit(Val::Int(i)))
                .map_err(|_| format!("bad number {n}")),
            Tok::Str(s) => Ok(Ast::Lit(Val::Str(s))),
            Tok::Op("(") => {
                let inner = self.or()?;
                self.expect(")")?;
                Ok(inner)
            }
            Tok::Op("[") => {
                let mut items = Vec::new();
                while !self.eat_op("]") {
                    items.push(self.or()?);
                    if !self.eat_op(",") {
                        self.expect("]")?;
                        break;
                    }
                }
                Ok(Ast::List(items))
            }
            Tok::Ident(word) => match word.as_str() {
                "true" => Ok(Ast::Lit(Val::Bool(true))),
                "false" => Ok(Ast::Lit(Val::Bool(false))),
                "nil" => Ok(Ast::Lit(Val::Nil)),
                _ if self.eat_op("(") => {
                    let mut args = Vec::new();
                    while !self.eat_op(")") {
                        args.push(self.or()?);
                        if !self.eat_op(",") {
                            self.expect(")")?;
                            break;
                        }
                    }
                    Ok(Ast::Call(word, args))
                }
                _ => {
                    let mut path = word;
                    while self.eat_op(".") {
                        match self.peek().cloned() {
                            Some(Tok::Ident(member)) => {
                                self.pos += 1;
                                path = format!("{path}.{member}");
                            }
                            other => {
                                return Err(format!(
                                    "expected a member name after `.`, found {other:?}"
                                ));
                            }
                        }
                    }
                    Ok(if self.names_are_strings {
                        Ast::Lit(Val::Str(path))
                    } else {
                        Ast::Var(path)
                    })
                }
            },
            Tok::Op(op) => Err(format!(
                "unexpected `{op}` (not in the emulated expr-lang subset)"
            )),
        }
    }
}

fn eval(ast: &Ast, vars: &BTreeMap<String, String>) -> Result<Val, String> {
    Ok(match ast {
        Ast::Lit(v) => v.clone(),
        Ast::Var(name) => Val::Str(
            vars.get(name)
                .cloned()
                .ok_or_else(|| format!("unknown name {name}"))?,
        ),
        Ast::List(items) => Val::List(
            items
                .iter()
                .map(|i| eval(i, vars))
                .collect::<Result<_, _>>()?,
        ),
        Ast::Not(inner) => match eval(inner, vars)? {
            Val::Bool(b) => Val::Bool(!b),
            v => return Err(format!("invalid operation: ! ({})", v.kind())),
        },
        Ast::Neg(inner) => match eval(inner, vars)? {
            Val::Int(i) => Val::Int(-i),
            Val::Float(f) => Val::Float(-f),
            v => return Err(format!("invalid operation: - ({})", v.kind())),
        },
        Ast::Call(name, args) => call(
            name,
            &args
                .iter()
                .map(|a| eval(a, vars))
                .collect::<Result<Vec<_>, _>>()?,
        )?,
        Ast::Bin(op @ ("&&" | "||"), l, r) => {
            let l = as_bool(op, eval(l, vars)?)?;
            // Short-circuit like expr-lang: the right side is not evaluated when decided.
            if (*op == "&&" && !l) || (*op == "||" && l) {
                Val::Bool(l)
            } else {
                Val::Bool(as_bool(op, eval(r, vars)?)?)
            }
        }
        Ast::Bin(op, l, r) => binary(op, eval(l, vars)?, eval(r, vars)?)?,
    })
}

fn as_bool(op: &str, v: Val) -> Result<bool, String> {
    match v {
        Val::Bool(b) => Ok(b),
        v => Err(format!(
            "invalid operation: {op} (mismatched type {})",
            v.kind()
        )),
    }
}

fn equal(l: &Val, r: &Val) -> bool {
    match (l.num(), r.num()) {
        (Some(a), Some(b)) => a == b,
        _ => l == r,
    }
}

fn binary(op: &str, l: Val, r: Val) -> Result<Val, String> {
    let mismatch = || {
        format!(
            "invalid operation: {op} (mismatched types {} and {})",
            l.kind(),
            r.kind()
        )
    };
    Ok(Val::Bool(match (op, &l, &r) {
        ("==", ..) => equal(&l, &r),
        ("!=", ..) => !equal(&l, &r),
        ("in", _, Val::List(items)) => items.iter().any(|i| equal(&l, i)),
        ("matches", Val::Str(s), Val::Str(re)) => regex::Regex::new(re)
            .map_err(|e| format!("invalid regex {re:?}: {e}"))?
            .is_match(s),
        ("contains", Val::Str(s), Val::Str(p)) => s.contains(p.as_str()),
        ("startsWith", Val::Str(s), Val::Str(p)) => s.starts_with(p.as_str()),
        ("endsWith", Val::Str(s), Val::Str(p)) => s.ends_with(p.as_str()),
        (_, Val::Str(a), Val::Str(b)) => match op {
            "<" => a < b,
            "<=" => a <= b,
            ">" => a > b,
            ">=" => a >= b,
            _ => return Err(mismatch()),
        },
        _ => {
            let (Some(a), Some(b)) = (l.num(), r.num()) else {
                return Err(mismatch());
            };
            match op {
                "<" => a < b,
                "<=" => a <= b,
                ">" => a > b,
                ">=" => a >= b,
                _ => return Err(mismatch()),
            }
        }
    }))
}

/// expr-lang's `int` and `float` builtins (Argo's `asInt` and `asFloat`): a string must parse
/// whole, so `asInt("1.5")` is an error exactly as in Argo.
fn call(name: &str, args: &[Val]) -> Result<Val, String> {
    let [arg] = args else {
        return Err(format!("{name}() takes one argument, got {}", args.len()));
    };
    match (name, arg) {
        ("asInt" | "int", Val::Int(i)) => Ok(Val::Int(*i)),
        ("asInt" | "int", Val::Float(f)) => Ok(Val::Int(*f as i64)),
        ("asInt" | "int", Val::Str(s)) => s
            .parse()
            .map(Val::Int)
            .map_err(|_| format!("invalid operation: int({s})")),
        ("asFloat" | "float", Val::Int(i)) => Ok(Val::Float(*i as f64)),
        ("asFloat" | "float", Val::Float(f)) => Ok(Val::Float(*f)),
        ("asFloat" | "float", Val::Str(s)) => s
            .parse()
            .map(Val::Float)
            .map_err(|_| format!("invalid operation: float({s})")),
        ("asInt" | "int" | "asFloat" | "float", v) => {
            Err(format!("invalid operation: {name}({})", v.kind()))
        }
        _ => Err(format!(
            "unknown function {name}() (not in the emulated expr-lang subset)"
        )),
    }
}

fn parse(src: &str, names_are_strings: bool) -> Result<Ast, String> {
    let mut parser = Parser {
        toks: lex(src)?,
        pos: 0,
        names_are_strings,
    };
    let ast = parser.or()?;
    match parser.peek() {
        None => Ok(ast),
        Some(tok) => Err(format!("unexpected {tok:?} after a complete expression")),
    }
}

/// Checks that `src` is in the supported subset (syntax only).
pub(crate) fn check(src: &str) -> Result<(), String> {
    parse(src, false).map(|_| ())
}

/// Evaluates an expr-lang boolean expression over string variables (`lastRetry.exitCode`, ...).
pub(crate) fn eval_bool(src: &str, vars: &BTreeMap<String, String>) -> Result<bool, String> {
    match eval(&parse(src, false)?, vars)? {
        Val::Bool(b) => Ok(b),
        v => Err(format!("unable to cast expression result '{v:?}' to bool")),
    }
}

/// Evaluates a step's substituted `when` the way Argo's `shouldExecute` does with govaluate:
/// bare words are strings, so `Failed == Succeeded` compares two strings.
pub(crate) fn eval_when(src: &str) -> Result<bool, String> {
    match eval(&parse(src, true)?, &BTreeMap::new())? {
        Val::Bool(b) => Ok(b),
        v => Err(format!(
            "Invalid 'when' expression '{src}': result {v:?} is not a bool"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn evaluates_argo_retry_expressions() -> Result<(), String> {
        let v = vars(&[
            ("lastRetry.exitCode", "75"),
            ("lastRetry.status", "Failed"),
            ("lastRetry.duration", "12"),
            ("lastRetry.message", "extract: Error (exit code 75)"),
        ]);
        assert!(eval_bool("asInt(lastRetry.exitCode) == 75", &v)?);
        assert!(eval_bool(
            r#"lastRetry.status == "Error" || (lastRetry.status == "Failed" && lastRetry.message matches "exit code 75([^0-9]|$)")"#,
            &v
        )?);
        assert!(eval_bool(
            "asInt(lastRetry.duration) < 120 and not (lastRetry.status in ['Error', 'Omitted'])",
            &v
        )?);
        assert!(eval_bool(
            "asFloat(lastRetry.duration) >= 12.0 && true == true",
            &v
        )?);
        assert!(
            !eval_bool("lastRetry.exitCode == 75", &v)?,
            "a string is never equal to an int"
        );
        assert!(eval_bool("asInt('x') == 1", &v).is_err());
        assert!(eval_bool("lastRetry.exitCode ?? 1", &v).is_err());
        assert!(eval_bool("nope == 1", &v).is_err());
        Ok(())
    }

    #[test]
    fn when_clauses_compare_bare_words() -> Result<(), String> {
        assert!(!eval_when("Failed == Succeeded")?);
        assert!(eval_when("Failed != Succeeded")?);
        Ok(())
    }
}
