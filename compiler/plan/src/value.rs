//! The conventions for values inside `params` (and pipeline param values).
//!
//! Plain JSON carries Int, Float, Bool, Str, Path, lists and records. Three tagged object
//! forms carry what plain JSON cannot say without losing meaning:
//!
//! - quantities: `{"quantity": "duration", "value": 0.004, "unit": "s", "text": "4 ms"}`, the
//!   value in the SI base unit so that `4 ms` and `0.004 s` hash alike;
//! - secrets: `{"secret": "NAME"}`, by name only, so a plan never holds a secret's value;
//! - compile-time configs (layers, optimizers, losses, schedules, chunkers, embedders):
//!   `{"fn": "nn.dense", "args": {"units": 128}}`;
//! - input placeholders: `{"input": "items[0]"}`, where a node's output sits inside a list
//!   or record argument; it names the node input (edge) whose value goes there.
//!
//! The compiler builds values with the constructors here and the runtime reads them with
//! [`classify`], so both sides agree on one spelling (which matters: cache keys hash it).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The kinds of physical quantity a plan carries, and the unit each is stored in.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// Seconds (`"s"`).
    Duration,
    /// Bytes (`"bytes"`).
    Bytes,
    /// A count of `"tokens"` or `"chars"`.
    TextSize,
    /// Events per second (`"/s"`): `5/min` is stored as `0.0833…`.
    Rate,
    /// A fraction (`"fraction"`): `10 %` is stored as `0.1`.
    Percent,
    /// Hertz (`"Hz"`).
    Frequency,
    /// Metres (`"m"`).
    Length,
}

impl Quantity {
    /// The name written in the `quantity` field.
    pub fn name(self) -> &'static str {
        match self {
            Quantity::Duration => "duration",
            Quantity::Bytes => "bytes",
            Quantity::TextSize => "text_size",
            Quantity::Rate => "rate",
            Quantity::Percent => "percent",
            Quantity::Frequency => "frequency",
            Quantity::Length => "length",
        }
    }

    /// The base unit, where there is exactly one (text sizes carry theirs: tokens and chars
    /// never convert, since the count of tokens depends on a tokenizer).
    pub fn base_unit(self) -> Option<&'static str> {
        match self {
            Quantity::Duration => Some("s"),
            Quantity::Bytes => Some("bytes"),
            Quantity::Percent => Some("fraction"),
            Quantity::Rate => Some("/s"),
            Quantity::Frequency => Some("Hz"),
            Quantity::Length => Some("m"),
            Quantity::TextSize => None,
        }
    }

    /// Whether `unit` is a valid unit for this quantity.
    pub fn accepts_unit(self, unit: &str) -> bool {
        match self {
            Quantity::TextSize => unit == "tokens" || unit == "chars",
            q => q.base_unit() == Some(unit),
        }
    }

    fn from_name(name: &str) -> Option<Quantity> {
        serde_json::from_value(Value::String(name.to_string())).ok()
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A quantity value: `value` in `unit`, with the source spelling `text` for display.
pub fn quantity(q: Quantity, value: f64, unit: &str, text: &str) -> Value {
    json!({"quantity": q.name(), "value": value, "unit": unit, "text": text})
}

/// A reference to a secret, by name only.
pub fn secret(name: &str) -> Value {
    json!({ "secret": name })
}

/// A compile-time config value: the function and its named arguments (always present, `{}`
/// when there are none, so that there is one spelling to hash).
pub fn config(function: &str, args: Map<String, Value>) -> Value {
    json!({"fn": function, "args": args})
}

/// A placeholder for the value of the node input named `name` (an edge of the node), used
/// where a node's output sits inside a list or record argument.
pub fn input_ref(name: &str) -> Value {
    json!({ "input": name })
}

/// A param value seen through the conventions.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueKind<'a> {
    Quantity {
        quantity: Quantity,
        value: f64,
        unit: &'a str,
        text: Option<&'a str>,
    },
    Secret(&'a str),
    /// `{"input": name}`: the value of the node's input named `name`.
    Input(&'a str),
    Config {
        function: &'a str,
        args: &'a Map<String, Value>,
    },
    /// Anything else: a scalar, a list, or a record (an object with none of the tag keys).
    Plain(&'a Value),
}

/// Reads `v` through the conventions. An object carrying a tag key (`quantity`, `secret`,
/// `input`, `fn`) but malformed otherwise is `Err`, never silently a record.
pub fn classify(v: &Value) -> Result<ValueKind<'_>, String> {
    let Value::Object(obj) = v else {
        return Ok(ValueKind::Plain(v));
    };
    if let Some(q) = obj.get("quantity") {
        let quantity = q
            .as_str()
            .and_then(Quantity::from_name)
            .ok_or_else(|| format!("unknown quantity {q}"))?;
        let value = obj
            .get("value")
            .and_then(Value::as_f64)
            .ok_or("quantity without a numeric `value`")?;
        let unit = obj
            .get("unit")
            .and_then(Value::as_str)
            .ok_or("quantity without a `unit`")?;
        if !quantity.accepts_unit(unit) {
            return Err(format!("unit `{unit}` is not a unit of {quantity}"));
        }
        let text = obj.get("text").and_then(Value::as_str);
        only_keys(obj, &["quantity", "value", "unit", "text"])?;
        return Ok(ValueKind::Quantity {
            quantity,
            value,
            unit,
            text,
        });
    }
    if let Some(s) = obj.get("secret") {
        only_keys(obj, &["secret"])?;
        let name = s.as_str().ok_or("secret name is not a string")?;
        return Ok(ValueKind::Secret(name));
    }
    if let Some(i) = obj.get("input") {
        only_keys(obj, &["input"])?;
        let name = i.as_str().ok_or("input placeholder name is not a string")?;
        return Ok(ValueKind::Input(name));
    }
    if let Some(f) = obj.get("fn") {
        only_keys(obj, &["fn", "args"])?;
        let function = f.as_str().ok_or("config `fn` is not a string")?;
        let args = obj
            .get("args")
            .and_then(Value::as_object)
            .ok_or("config without an `args` object")?;
        return Ok(ValueKind::Config { function, args });
    }
    Ok(ValueKind::Plain(v))
}

fn only_keys(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("unexpected field `{k}`")),
        None => Ok(()),
    }
}

/// A short human rendering: quantities by their text, secrets as `secret(NAME)`, configs as
/// calls (`nn.dense(units: 128)`), everything else as compact JSON.
pub fn display(v: &Value) -> String {
    match classify(v) {
        Ok(ValueKind::Quantity {
            value, unit, text, ..
        }) => match text {
            Some(t) => t.to_string(),
            None => format!("{value} {unit}"),
        },
        Ok(ValueKind::Secret(name)) => format!("secret({name})"),
        Ok(ValueKind::Input(name)) => format!("<input {name}>"),
        Ok(ValueKind::Config { function, args }) if args.is_empty() => function.to_string(),
        Ok(ValueKind::Config { function, args }) => {
            let args: Vec<String> = args
                .iter()
                .map(|(k, v)| format!("{k}: {}", display(v)))
                .collect();
            format!("{function}({})", args.join(", "))
        }
        Ok(ValueKind::Plain(Value::Array(items))) => {
            let items: Vec<String> = items.iter().map(display).collect();
            format!("[{}]", items.join(", "))
        }
        _ => serde_json::to_string(v).expect("a value serializes"),
    }
}

/// `path.key` for identifier keys, `path["key"]` otherwise (so paths stay unambiguous).
pub fn key_segment(path: &str, key: &str) -> String {
    let ident = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (ident, path.is_empty()) {
        (true, true) => key.to_string(),
        (true, false) => format!("{path}.{key}"),
        (false, _) => format!(
            "{path}[{}]",
            serde_json::to_string(key).expect("a string serializes")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_each_form() {
        let q = quantity(Quantity::Duration, 0.004, "s", "4 ms");
        assert!(matches!(
            classify(&q),
            Ok(ValueKind::Quantity {
                quantity: Quantity::Duration,
                ..
            })
        ));
        assert_eq!(
            classify(&secret("API_KEY")),
            Ok(ValueKind::Secret("API_KEY"))
        );
        let c = config(
            "nn.dense",
            json!({"units": 128}).as_object().unwrap().clone(),
        );
        assert!(matches!(
            classify(&c),
            Ok(ValueKind::Config {
                function: "nn.dense",
                ..
            })
        ));
        assert!(matches!(
            classify(&json!({"a": 1})),
            Ok(ValueKind::Plain(_))
        ));
        assert!(classify(&json!({"quantity": "duration", "value": 1, "unit": "ms"})).is_err());
        assert!(classify(&json!({"secret": "X", "value": "leak"})).is_err());
        assert!(classify(&json!({"fn": "nn.relu"})).is_err());
        assert_eq!(
            classify(&input_ref("items[0]")),
            Ok(ValueKind::Input("items[0]"))
        );
        assert!(classify(&json!({"input": 3})).is_err());
    }

    #[test]
    fn rate_units() {
        assert!(Quantity::Rate.accepts_unit("/s"));
        assert!(!Quantity::Rate.accepts_unit("/min"));
        assert!(Quantity::TextSize.accepts_unit("chars"));
        assert!(!Quantity::TextSize.accepts_unit("token"));
    }

    #[test]
    fn display_forms() {
        let c = config("nn.adam", json!({"lr": 0.001}).as_object().unwrap().clone());
        assert_eq!(display(&c), "nn.adam(lr: 0.001)");
        assert_eq!(
            display(&quantity(Quantity::Percent, 0.1, "fraction", "10 %")),
            "10 %"
        );
        assert_eq!(display(&secret("K")), "secret(K)");
        assert_eq!(display(&json!("x")), "\"x\"");
    }
}
