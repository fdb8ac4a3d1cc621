//! Payload filters of a webhook: a small JSON language over the event envelope
//! (`{"data.amount": {"$gte": 100}, "$or": [...]}`), parsed and validated once into an AST.
//!
//! The grammar (documented for users in `docs/destinations.md`):
//!
//! ```text
//! filter    := { entry, ... }                 every entry must hold ({} matches everything)
//! entry     := "$and": [filter, ...]          all of them (non-empty)
//!            | "$or":  [filter, ...]          at least one (non-empty)
//!            | "$not": filter                 the filter does not hold
//!            | "<path>": operators            the value at path satisfies every operator
//!            | "<path>": <non-object value>   shorthand for {"$eq": value}
//! operators := { "$eq" | "$neq": any, "$gt" | "$gte" | "$lt" | "$lte": number | string,
//!                "$in" | "$nin": [any, ...], "$exists": bool,
//!                "$startsWith" | "$endsWith": string }
//! path      := event | timestamp | eventId | data(.segment)*   (a numeric segment indexes arrays)
//! ```

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::validate::FieldError;

/// Bounds that keep a filter cheap to evaluate on the ingest path.
pub const MAX_DEPTH: usize = 8;
pub const MAX_NODES: usize = 128;
pub const MAX_LIST: usize = 256;
pub const MAX_PATH_SEGMENTS: usize = 16;
pub const MAX_PATH_LEN: usize = 256;

/// The top-level envelope fields a path may start with.
pub const ROOTS: [&str; 4] = ["event", "timestamp", "eventId", "data"];

/// A parsed, validated payload filter.
#[derive(Clone, Debug, PartialEq)]
pub struct PayloadFilter {
    root: Node,
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    Field { path: Vec<String>, ops: Vec<Op> },
}

#[derive(Clone, Debug, PartialEq)]
enum Op {
    Eq(Value),
    Neq(Value),
    Cmp(Ordering, bool, Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Exists(bool),
    StartsWith(String),
    EndsWith(String),
}

struct Parser {
    nodes: usize,
}

impl PayloadFilter {
    /// Parses a filter as a client sent it. Errors name the failing place as `filter.<path>`,
    /// e.g. `filter.$or[1].data.amount.$gte`.
    pub fn parse(raw: &Value) -> Result<Self, FieldError> {
        let mut parser = Parser { nodes: 0 };
        let root = parser.filter(raw, "filter", 0)?;
        Ok(Self { root })
    }

    /// Whether the envelope `{"event", "timestamp", "eventId", "data"}` passes the filter.
    pub fn matches(&self, envelope: &Value) -> bool {
        self.root.eval(envelope)
    }
}

impl Parser {
    fn count(&mut self, at: &str) -> Result<(), FieldError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(FieldError::new(
                at,
                format!("the filter is too large (at most {MAX_NODES} conditions)"),
            ));
        }
        Ok(())
    }

    fn filter(&mut self, raw: &Value, at: &str, depth: usize) -> Result<Node, FieldError> {
        if depth > MAX_DEPTH {
            return Err(FieldError::new(
                at,
                format!("nests too deeply (at most {MAX_DEPTH} levels)"),
            ));
        }
        let Value::Object(entries) = raw else {
            return Err(FieldError::new(at, "must be a JSON object"));
        };
        let mut all = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let here = format!("{at}.{key}");
            self.count(&here)?;
            let node = match key.as_str() {
                "$and" | "$or" => {
                    let list = self.list_of_filters(value, &here, depth)?;
                    if key == "$and" {
                        Node::All(list)
                    } else {
                        Node::Any(list)
                    }
                }
                "$not" => Node::Not(Box::new(self.filter(value, &here, depth + 1)?)),
                k if k.starts_with('$') => {
                    return Err(FieldError::new(
                        here,
                        "unknown operator here: use $and, $or, $not or a path like data.amount",
                    ))
                }
                path => Node::Field {
                    path: parse_path(path, &here)?,
                    ops: self.operators(value, &here)?,
                },
            };
            all.push(node);
        }
        Ok(match all.len() {
            1 => all.remove(0),
            _ => Node::All(all),
        })
    }

    fn list_of_filters(
        &mut self,
        raw: &Value,
        at: &str,
        depth: usize,
    ) -> Result<Vec<Node>, FieldError> {
        let Value::Array(items) = raw else {
            return Err(FieldError::new(at, "must be an array of filters"));
        };
        if items.is_empty() {
            return Err(FieldError::new(at, "must list at least one filter"));
        }
        if items.len() > MAX_LIST {
            return Err(FieldError::new(
                at,
                format!("must list at most {MAX_LIST} filters"),
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.filter(item, &format!("{at}[{i}]"), depth + 1))
            .collect()
    }

    fn operators(&mut self, raw: &Value, at: &str) -> Result<Vec<Op>, FieldError> {
        let ops: &Map<String, Value> = match raw {
            Value::Object(ops) => ops,
            other => return Ok(vec![Op::Eq(other.clone())]),
        };
        if ops.is_empty() {
            return Err(FieldError::new(
                at,
                "must hold at least one operator, e.g. {\"$eq\": 1}",
            ));
        }
        let mut out = Vec::with_capacity(ops.len());
        for (name, operand) in ops {
            let here = format!("{at}.{name}");
            self.count(&here)?;
            let op = match name.as_str() {
                "$eq" => Op::Eq(operand.clone()),
                "$neq" => Op::Neq(operand.clone()),
                "$gt" | "$gte" | "$lt" | "$lte" => {
                    if !(operand.is_number() || operand.is_string()) {
                        return Err(FieldError::new(here, "must be a number or a string"));
                    }
                    let (ord, or_equal) = match name.as_str() {
                        "$gt" => (Ordering::Greater, false),
                        "$gte" => (Ordering::Greater, true),
                        "$lt" => (Ordering::Less, false),
                        _ => (Ordering::Less, true),
                    };
                    Op::Cmp(ord, or_equal, operand.clone())
                }
                "$in" | "$nin" => {
                    let Value::Array(list) = operand else {
                        return Err(FieldError::new(here, "must be an array of values"));
                    };
                    if list.len() > MAX_LIST {
                        return Err(FieldError::new(
                            here,
                            format!("must list at most {MAX_LIST} values"),
                        ));
                    }
                    if name == "$in" {
                        Op::In(list.clone())
                    } else {
                        Op::Nin(list.clone())
                    }
                }
                "$exists" => match operand {
                    Value::Bool(b) => Op::Exists(*b),
                    _ => return Err(FieldError::new(here, "must be true or false")),
                },
                "$startsWith" | "$endsWith" => {
                    let Value::String(s) = operand else {
                        return Err(FieldError::new(here, "must be a string"));
                    };
                    if name == "$startsWith" {
                        Op::StartsWith(s.clone())
                    } else {
                        Op::EndsWith(s.clone())
                    }
                }
                _ => {
                    return Err(FieldError::new(
                        here,
                        "unknown operator: use $eq $neq $gt $gte $lt $lte $in $nin $exists \
                         $startsWith $endsWith (or $and $or $not around paths)",
                    ))
                }
            };
            out.push(op);
        }
        Ok(out)
    }
}

fn parse_path(raw: &str, at: &str) -> Result<Vec<String>, FieldError> {
    if raw.len() > MAX_PATH_LEN {
        return Err(FieldError::new(
            at,
            format!("path must be at most {MAX_PATH_LEN} characters"),
        ));
    }
    let segments: Vec<String> = raw.split('.').map(str::to_owned).collect();
    if segments.iter().any(String::is_empty) {
        return Err(FieldError::new(
            at,
            "path must be dot-separated names like data.amount",
        ));
    }
    if segments.len() > MAX_PATH_SEGMENTS {
        return Err(FieldError::new(
            at,
            format!("path must have at most {MAX_PATH_SEGMENTS} segments"),
        ));
    }
    // Catch `amount` meant as `data.amount`: only the envelope's fields exist at the top.
    let root = segments[0].as_str();
    if !ROOTS.contains(&root) || (root != "data" && segments.len() > 1) {
        return Err(FieldError::new(
            at,
            "path must be event, timestamp, eventId or start with data (e.g. data.amount)",
        ));
    }
    Ok(segments)
}

impl Node {
    fn eval(&self, envelope: &Value) -> bool {
        match self {
            Node::All(nodes) => nodes.iter().all(|n| n.eval(envelope)),
            Node::Any(nodes) => nodes.iter().any(|n| n.eval(envelope)),
            Node::Not(node) => !node.eval(envelope),
            Node::Field { path, ops } => {
                let value = lookup(envelope, path);
                ops.iter().all(|op| op.eval(value))
            }
        }
    }
}

fn lookup<'v>(root: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(root, |v, seg| match v {
        Value::Object(map) => map.get(seg),
        Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

impl Op {
    /// `value` is `None` when the path does not exist. Only `$neq`, `$nin` and
    /// `$exists: false` hold for a missing value.
    fn eval(&self, value: Option<&Value>) -> bool {
        match (self, value) {
            (Op::Exists(want), v) => v.is_some() == *want,
            (Op::Neq(x), v) => !v.is_some_and(|v| json_eq(v, x)),
            (Op::Nin(list), v) => !v.is_some_and(|v| list.iter().any(|x| json_eq(v, x))),
            (_, None) => false,
            (Op::Eq(x), Some(v)) => json_eq(v, x),
            (Op::In(list), Some(v)) => list.iter().any(|x| json_eq(v, x)),
            (Op::Cmp(ord, or_equal, x), Some(v)) => match compare(v, x) {
                Some(Ordering::Equal) => *or_equal,
                Some(got) => got == *ord,
                None => false,
            },
            (Op::StartsWith(p), Some(Value::String(s))) => s.starts_with(p.as_str()),
            (Op::EndsWith(p), Some(Value::String(s))) => s.ends_with(p.as_str()),
            (Op::StartsWith(_) | Op::EndsWith(_), Some(_)) => false,
        }
    }
}

/// Numbers compare by value (`100 == 100.0`), strings by code point; other pairs do not compare.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn compare_numbers(x: &serde_json::Number, y: &serde_json::Number) -> Option<Ordering> {
    // Exact for integers (no f64 rounding above 2^53), by value otherwise.
    if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
        return Some(a.cmp(&b));
    }
    if let (Some(a), Some(b)) = (x.as_u64(), y.as_u64()) {
        return Some(a.cmp(&b));
    }
    x.as_f64()?.partial_cmp(&y.as_f64()?)
}

/// JSON equality with numbers compared by value.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(data: Value) -> Value {
        json!({"event": "order.paid", "timestamp": "2026-11-23T10:00:00.000Z",
               "eventId": "evt_01", "data": data})
    }

    fn check(filter: Value, data: Value) -> bool {
        PayloadFilter::parse(&filter)
            .unwrap_or_else(|e| panic!("{filter} should parse: {e}"))
            .matches(&envelope(data))
    }

    fn refused(filter: Value) -> FieldError {
        PayloadFilter::parse(&filter).expect_err("the filter should be refused")
    }

    #[test]
    fn empty_filter_matches_everything() {
        assert!(check(json!({}), json!({})));
        assert!(check(json!({}), json!({"anything": 1})));
    }

    #[test]
    fn eq_and_shorthand() {
        assert!(check(
            json!({"data.plan": {"$eq": "pro"}}),
            json!({"plan": "pro"})
        ));
        assert!(!check(
            json!({"data.plan": {"$eq": "pro"}}),
            json!({"plan": "free"})
        ));
        assert!(check(json!({"data.plan": "pro"}), json!({"plan": "pro"})));
        assert!(!check(json!({"data.plan": "pro"}), json!({})));
        // Numbers compare by value, whatever their JSON spelling.
        assert!(check(json!({"data.n": 100}), json!({"n": 100.0})));
        assert!(check(
            json!({"data.tags": {"$eq": ["a", 1]}}),
            json!({"tags": ["a", 1.0]})
        ));
        assert!(check(
            json!({"data.o": {"$eq": {"k": 1}}}),
            json!({"o": {"k": 1}})
        ));
        assert!(!check(
            json!({"data.o": {"$eq": {"k": 1}}}),
            json!({"o": {"k": 1, "j": 2}})
        ));
        assert!(check(json!({"data.x": null}), json!({"x": null})));
        assert!(
            !check(json!({"data.x": null}), json!({})),
            "missing is not null"
        );
    }

    #[test]
    fn envelope_fields_are_paths_too() {
        assert!(check(json!({"event": "order.paid"}), json!({})));
        assert!(!check(json!({"event": "order.refunded"}), json!({})));
        assert!(check(
            json!({"eventId": {"$startsWith": "evt_"}}),
            json!({})
        ));
        assert!(check(
            json!({"timestamp": {"$gte": "2026-01-01"}}),
            json!({})
        ));
        assert!(check(json!({"data": {"$exists": true}}), json!({})));
    }

    #[test]
    fn neq() {
        assert!(check(
            json!({"data.plan": {"$neq": "free"}}),
            json!({"plan": "pro"})
        ));
        assert!(!check(
            json!({"data.plan": {"$neq": "free"}}),
            json!({"plan": "free"})
        ));
        assert!(
            check(json!({"data.plan": {"$neq": "free"}}), json!({})),
            "missing differs"
        );
        assert!(!check(json!({"data.n": {"$neq": 1}}), json!({"n": 1.0})));
    }

    #[test]
    fn gt_gte_lt_lte_on_numbers() {
        let at = |op: &str, limit: Value, n: Value| {
            check(json!({"data.amount": {op: limit}}), json!({"amount": n}))
        };
        assert!(at("$gt", json!(100), json!(101)));
        assert!(!at("$gt", json!(100), json!(100)));
        assert!(at("$gte", json!(100), json!(100)));
        assert!(at("$gte", json!(100), json!(100.5)));
        assert!(!at("$gte", json!(100), json!(99.99)));
        assert!(at("$lt", json!(100), json!(-5)));
        assert!(!at("$lt", json!(100), json!(100)));
        assert!(at("$lte", json!(100), json!(100)));
        assert!(!at("$lte", json!(100), json!(101)));
        // Large integers compare exactly.
        assert!(at(
            "$gt",
            json!(9_007_199_254_740_992u64),
            json!(9_007_199_254_740_993u64)
        ));
        assert!(at("$lt", json!(-1), json!(i64::MIN)));
        assert!(at("$gt", json!(-1), json!(u64::MAX)));
    }

    #[test]
    fn comparisons_on_strings_and_mismatched_types() {
        let f = json!({"data.day": {"$gte": "2026-11-01", "$lt": "2026-12-01"}});
        assert!(check(f.clone(), json!({"day": "2026-11-23"})));
        assert!(!check(f.clone(), json!({"day": "2026-12-01"})));
        // A string never compares with a number, and a missing value never compares.
        assert!(!check(
            json!({"data.amount": {"$gt": 1}}),
            json!({"amount": "5"})
        ));
        assert!(!check(
            json!({"data.amount": {"$lt": "z"}}),
            json!({"amount": 5})
        ));
        assert!(!check(json!({"data.amount": {"$lte": 5}}), json!({})));
        assert!(!check(
            json!({"data.amount": {"$gt": 1}}),
            json!({"amount": null})
        ));
    }

    #[test]
    fn in_and_nin() {
        let f = json!({"data.country": {"$in": ["FR", "DE"]}});
        assert!(check(f.clone(), json!({"country": "DE"})));
        assert!(!check(f.clone(), json!({"country": "US"})));
        assert!(!check(f, json!({})));
        assert!(check(json!({"data.n": {"$in": [1, 2]}}), json!({"n": 2.0})));
        let f = json!({"data.country": {"$nin": ["FR", "DE"]}});
        assert!(check(f.clone(), json!({"country": "US"})));
        assert!(!check(f.clone(), json!({"country": "FR"})));
        assert!(check(f, json!({})), "a missing value is in no list");
        assert!(!check(json!({"data.x": {"$in": []}}), json!({"x": 1})));
    }

    #[test]
    fn exists() {
        assert!(check(
            json!({"data.coupon": {"$exists": true}}),
            json!({"coupon": null})
        ));
        assert!(!check(json!({"data.coupon": {"$exists": true}}), json!({})));
        assert!(check(json!({"data.coupon": {"$exists": false}}), json!({})));
        assert!(!check(
            json!({"data.coupon": {"$exists": false}}),
            json!({"coupon": 0})
        ));
    }

    #[test]
    fn starts_with_and_ends_with() {
        let f = json!({"data.ref": {"$startsWith": "refs/tags/"}});
        assert!(check(f.clone(), json!({"ref": "refs/tags/v1.0"})));
        assert!(!check(f.clone(), json!({"ref": "refs/heads/main"})));
        assert!(!check(f, json!({"ref": 7})), "not a string");
        let f = json!({"data.email": {"$endsWith": "@example.org"}});
        assert!(check(f.clone(), json!({"email": "ada@example.org"})));
        assert!(!check(f.clone(), json!({"email": "ada@example.com"})));
        assert!(!check(f, json!({})));
        // Unicode is compared as text.
        assert!(check(
            json!({"data.t": {"$startsWith": "🎉"}}),
            json!({"t": "🎉 party"})
        ));
    }

    #[test]
    fn and_or_not() {
        let f = json!({"$and": [{"data.a": 1}, {"data.b": 2}]});
        assert!(check(f.clone(), json!({"a": 1, "b": 2})));
        assert!(!check(f, json!({"a": 1, "b": 3})));
        let f = json!({"$or": [{"data.a": 1}, {"data.b": 2}]});
        assert!(check(f.clone(), json!({"a": 0, "b": 2})));
        assert!(!check(f, json!({"a": 0, "b": 0})));
        let f = json!({"$not": {"data.plan": "free"}});
        assert!(check(f.clone(), json!({"plan": "pro"})));
        assert!(!check(f, json!({"plan": "free"})));
        // Top-level entries and several operators on one path are all required.
        let f = json!({"data.amount": {"$gte": 100, "$lt": 200}, "$or": [{"data.currency": "EUR"}, {"data.currency": "USD"}]});
        assert!(check(f.clone(), json!({"amount": 150, "currency": "USD"})));
        assert!(!check(f.clone(), json!({"amount": 250, "currency": "USD"})));
        assert!(!check(f, json!({"amount": 150, "currency": "GBP"})));
    }

    #[test]
    fn nested_paths_and_array_indexes() {
        let data = json!({"pull_request": {"user": {"login": "ada"}, "labels": [{"name": "bug"}]}});
        assert!(check(
            json!({"data.pull_request.user.login": "ada"}),
            data.clone()
        ));
        assert!(check(
            json!({"data.pull_request.labels.0.name": "bug"}),
            data.clone()
        ));
        assert!(!check(
            json!({"data.pull_request.labels.1.name": {"$exists": true}}),
            data.clone()
        ));
        assert!(!check(
            json!({"data.pull_request.user.login.x": "ada"}),
            data
        ));
    }

    #[test]
    fn invalid_filters_are_refused_with_their_path() {
        assert_eq!(refused(json!([])).field, "filter");
        assert_eq!(refused(json!({"amount": 1})).field, "filter.amount");
        assert_eq!(refused(json!({"event.x": 1})).field, "filter.event.x");
        assert_eq!(refused(json!({"data..a": 1})).field, "filter.data..a");
        assert_eq!(
            refused(json!({"data.amount": {"$gte": true}})).field,
            "filter.data.amount.$gte"
        );
        assert_eq!(
            refused(json!({"data.amount": {"$between": [1, 2]}})).field,
            "filter.data.amount.$between"
        );
        assert_eq!(refused(json!({"data.a": {}})).field, "filter.data.a");
        assert_eq!(
            refused(json!({"data.a": {"$in": 3}})).field,
            "filter.data.a.$in"
        );
        assert_eq!(
            refused(json!({"data.a": {"$nin": "x"}})).field,
            "filter.data.a.$nin"
        );
        assert_eq!(
            refused(json!({"data.a": {"$exists": 1}})).field,
            "filter.data.a.$exists"
        );
        assert_eq!(
            refused(json!({"data.a": {"$startsWith": 1}})).field,
            "filter.data.a.$startsWith"
        );
        assert_eq!(
            refused(json!({"data.a": {"$endsWith": null}})).field,
            "filter.data.a.$endsWith"
        );
        assert_eq!(refused(json!({"$or": []})).field, "filter.$or");
        assert_eq!(refused(json!({"$and": {}})).field, "filter.$and");
        assert_eq!(
            refused(json!({"$or": [{"data.a": 1}, {"data.b": {"$gt": []}}]})).field,
            "filter.$or[1].data.b.$gt"
        );
        assert_eq!(refused(json!({"$not": 5})).field, "filter.$not");
        assert_eq!(refused(json!({"$nor": []})).field, "filter.$nor");
    }

    #[test]
    fn size_and_depth_are_bounded() {
        let mut deep = json!({"data.a": 1});
        for _ in 0..=MAX_DEPTH {
            deep = json!({"$not": deep});
        }
        assert!(refused(deep).message.contains("deeply"));
        let wide: Map<String, Value> = (0..=MAX_NODES)
            .map(|i| (format!("data.f{i}"), json!(i)))
            .collect();
        assert!(refused(Value::Object(wide)).message.contains("too large"));
        let long = format!("data.{}", "a.".repeat(MAX_PATH_SEGMENTS) + "z");
        assert!(PayloadFilter::parse(&json!({long: 1})).is_err());
    }
}
