//! Fuzzes the two webhook filters a client writes: event-type patterns (`EventFilter`) and the
//! JSON payload-filter language (`PayloadFilter`), parsing any input and evaluating what parses.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use hookrelay_domain::{EventFilter, PayloadFilter};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value};

#[derive(Arbitrary, Debug)]
struct Patterns<'a> {
    patterns: Vec<&'a str>,
    event_types: Vec<&'a str>,
}

/// Names filters and envelopes share, so paths can meet data without guessing both.
const NAMES: [&str; 8] = ["amount", "type", "id", "items", "user", "0", "1", "status"];
const OPERATORS: [&str; 14] = [
    "$eq",
    "$neq",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$exists",
    "$startsWith",
    "$endsWith",
    "$and",
    "$or",
    "$not",
];

/// A payload filter in the grammar's shape (and a little outside it), rendered to JSON.
#[derive(Arbitrary, Debug)]
struct Filter<'a>(Vec<Entry<'a>>);

#[derive(Arbitrary, Debug)]
enum Entry<'a> {
    And(Vec<Filter<'a>>),
    Or(Vec<Filter<'a>>),
    Not(Box<Filter<'a>>),
    Field(Path<'a>, Operand<'a>),
}

#[derive(Arbitrary, Debug)]
enum Path<'a> {
    Root(u8),
    Data(Vec<Key<'a>>),
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Key<'a> {
    Known(u8),
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Operand<'a> {
    Value(Json<'a>),
    Ops(Vec<(u8, Json<'a>)>),
}

#[derive(Arbitrary, Debug)]
enum Json<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(&'a str),
    Array(Vec<Json<'a>>),
    Object(Vec<(Key<'a>, Json<'a>)>),
}

impl Key<'_> {
    fn text(&self) -> String {
        match self {
            Key::Known(i) => NAMES[usize::from(*i) % NAMES.len()].to_owned(),
            Key::Raw(s) => (*s).to_owned(),
        }
    }
}

impl Json<'_> {
    fn value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Int(n) => Value::from(*n),
            Json::Uint(n) => Value::from(*n),
            Json::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Json::Str(s) => Value::String((*s).to_owned()),
            Json::Array(items) => Value::Array(items.iter().map(Json::value).collect()),
            Json::Object(entries) => {
                Value::Object(entries.iter().map(|(k, v)| (k.text(), v.value())).collect())
            }
        }
    }
}

impl Filter<'_> {
    fn value(&self) -> Value {
        let mut map = Map::new();
        for entry in &self.0 {
            let (key, value) = match entry {
                Entry::And(list) => ("$and".to_owned(), list_value(list)),
                Entry::Or(list) => ("$or".to_owned(), list_value(list)),
                Entry::Not(inner) => ("$not".to_owned(), inner.value()),
                Entry::Field(path, operand) => (path.text(), operand.value()),
            };
            map.insert(key, value);
        }
        Value::Object(map)
    }
}

fn list_value(list: &[Filter<'_>]) -> Value {
    Value::Array(list.iter().map(Filter::value).collect())
}

impl Path<'_> {
    fn text(&self) -> String {
        match self {
            Path::Root(i) => {
                ["event", "timestamp", "eventId", "data"][usize::from(*i) % 4].to_owned()
            }
            Path::Data(keys) => {
                let mut path = String::from("data");
                for key in keys {
                    path.push('.');
                    path.push_str(&key.text());
                }
                path
            }
            Path::Raw(s) => (*s).to_owned(),
        }
    }
}

impl Operand<'_> {
    fn value(&self) -> Value {
        match self {
            Operand::Value(v) => v.value(),
            Operand::Ops(ops) => Value::Object(
                ops.iter()
                    .map(|(i, v)| {
                        let name = OPERATORS[usize::from(*i) % OPERATORS.len()];
                        (name.to_owned(), v.value())
                    })
                    .collect(),
            ),
        }
    }
}

/// An envelope as ingest builds it, with fuzzed contents.
#[derive(Arbitrary, Debug)]
struct Envelope<'a> {
    event: &'a str,
    timestamp: Json<'a>,
    event_id: &'a str,
    data: Json<'a>,
}

impl Envelope<'_> {
    fn value(&self) -> Value {
        serde_json::json!({
            "event": self.event,
            "timestamp": self.timestamp.value(),
            "eventId": self.event_id,
            "data": self.data.value(),
        })
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the filter and the input's shape, so one corpus grows inputs for all:
    // event-type patterns, payload-filter JSON as raw text (`filter NUL envelope`, which finds
    // what the JSON parser lets through), or a payload filter built in the grammar's shape (which
    // reaches evaluation far more often than random text).
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            if let Ok(input) = Patterns::arbitrary_take_rest(Unstructured::new(rest)) {
                event_filter(&input);
            }
        }
        1 => {
            let mut parts = rest.splitn(2, |b| *b == 0);
            let filter = parts.next().unwrap_or_default();
            let envelope = parts.next().unwrap_or_default();
            if let Ok(raw) = serde_json::from_slice::<Value>(filter) {
                let envelope = serde_json::from_slice::<Value>(envelope).unwrap_or(Value::Null);
                payload_filter(raw, &envelope);
            }
        }
        _ => {
            let mut u = Unstructured::new(rest);
            if let (Ok(filter), Ok(envelope)) =
                (Filter::arbitrary(&mut u), Envelope::arbitrary(&mut u))
            {
                payload_filter(filter.value(), &envelope.value());
            }
        }
    }
});

fn event_filter(input: &Patterns<'_>) {
    let Ok(filter) = EventFilter::parse(&input.patterns) else {
        return;
    };
    let everything = input.patterns.is_empty() || input.patterns.contains(&"*");
    for event_type in &input.event_types {
        let matched = filter.matches(event_type);
        // What the documentation promises: `*` or no pattern match all, an exact type itself.
        if everything || input.patterns.contains(event_type) {
            assert!(matched, "{event_type:?} must match {:?}", input.patterns);
        }
    }
}

fn payload_filter(raw: Value, envelope: &Value) {
    let Ok(parsed) = PayloadFilter::parse(&raw) else {
        return;
    };
    let matched = parsed.matches(envelope);
    // `$not` around a filter must invert it, whenever the wrapped filter is still within bounds.
    let negated = serde_json::json!({ "$not": raw });
    if let Ok(not) = PayloadFilter::parse(&negated) {
        assert_eq!(not.matches(envelope), !matched, "{negated} on {envelope}");
    }
}
