//! Values the fast path works on: the JSON scalar types, borrowed from the record where possible.

use std::borrow::Cow;

/// A slot's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    /// JSON `null` or a missing key (Rhai's `()`).
    Unit,
    /// JSON boolean.
    Bool(bool),
    /// JSON integer that fits i64.
    Int(i64),
    /// Any other JSON number.
    Float(f64),
    /// JSON string.
    Str(Cow<'a, str>),
    /// An array or object: only Rhai handles these.
    Composite,
    /// Reaching it is a Rhai error (a property of a non-object): only Rhai reports those.
    Unreachable,
}

impl Value<'_> {
    /// The same value with its own storage.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Unit => Value::Unit,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::Float(f) => Value::Float(f),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Composite => Value::Composite,
            Value::Unreachable => Value::Unreachable,
        }
    }
}
