//! The fast-path tree turned into specialised closures: the common leaves (`field <op> literal`,
//! string methods on a field, `field in [literals]`) read their slot and compare with a typed
//! constant directly; everything else runs through the generic evaluator. Same results, fewer
//! indirections on the hot path.

use std::sync::Arc;

use super::compile::{CmpOp, Node, StrMethod};
use super::eval::{compare, eval_bool};
use super::value::Value;
use super::Fallback;

/// A compiled predicate over the record's slots.
pub type Predicate = Arc<dyn Fn(&[Value<'_>]) -> Result<bool, Fallback> + Send + Sync>;

fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        same => same,
    }
}

#[inline(always)]
fn order<T: PartialOrd + ?Sized>(op: CmpOp, a: &T, b: &T) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
    }
}

/// `slot <op> constant`, with Rhai's rules for the other types inlined.
fn field_vs_literal(op: CmpOp, slot: usize, literal: Value<'static>) -> Predicate {
    match literal {
        Value::Int(c) => Arc::new(move |slots| match slots.get(slot) {
            Some(Value::Int(v)) => Ok(order(op, v, &c)),
            Some(Value::Float(v)) => Ok(order(op, v, &(c as f64))),
            Some(other) => compare(op, other, &Value::Int(c)),
            None => Err(Fallback),
        }),
        Value::Float(c) => Arc::new(move |slots| match slots.get(slot) {
            Some(Value::Float(v)) => Ok(order(op, v, &c)),
            Some(Value::Int(v)) => Ok(order(op, &(*v as f64), &c)),
            Some(other) => compare(op, other, &Value::Float(c)),
            None => Err(Fallback),
        }),
        Value::Str(c) => Arc::new(move |slots| match slots.get(slot) {
            Some(Value::Str(v)) => Ok(order(op, v.as_ref(), c.as_ref())),
            Some(other) => compare(
                op,
                other,
                &Value::Str(std::borrow::Cow::Borrowed(c.as_ref())),
            ),
            None => Err(Fallback),
        }),
        other => Arc::new(move |slots| match slots.get(slot) {
            Some(value) => compare(op, value, &other),
            None => Err(Fallback),
        }),
    }
}

/// `slot.len() <op> integer`: character count of a string field.
fn length_vs_int(op: CmpOp, slot: usize, c: i64) -> Predicate {
    Arc::new(move |slots| match slots.get(slot) {
        Some(Value::Str(text)) => Ok(order(op, &(text.chars().count() as i64), &c)),
        _ => Err(Fallback),
    })
}

/// `slot.to_string() <op> "string"` for integer, boolean and string fields, without allocating.
fn text_vs_string(op: CmpOp, slot: usize, c: String) -> Predicate {
    Arc::new(move |slots| match slots.get(slot) {
        Some(Value::Int(v)) => {
            let mut buffer = [0u8; 24];
            let text = format_int(*v, &mut buffer);
            Ok(order(op, text, c.as_str()))
        }
        Some(Value::Bool(b)) => Ok(order(op, if *b { "true" } else { "false" }, c.as_str())),
        Some(Value::Str(text)) => Ok(order(op, text.as_ref(), c.as_str())),
        _ => Err(Fallback),
    })
}

/// Decimal text of an integer in a stack buffer (what Rhai's `to_string` gives).
fn format_int(value: i64, buffer: &mut [u8; 24]) -> &str {
    let mut position = buffer.len();
    let mut rest = value.unsigned_abs();
    loop {
        position -= 1;
        buffer[position] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        position -= 1;
        buffer[position] = b'-';
    }
    // Only ASCII digits and '-' were written.
    std::str::from_utf8(&buffer[position..]).unwrap_or_default()
}

/// Builds the predicate of a boolean node.
pub fn predicate(node: &Node) -> Predicate {
    match node {
        Node::Cmp(op, lhs, rhs) => match (lhs.as_ref(), rhs.as_ref()) {
            (Node::Slot(slot), Node::Const(c)) => field_vs_literal(*op, *slot, c.clone()),
            (Node::Const(c), Node::Slot(slot)) => field_vs_literal(flip(*op), *slot, c.clone()),
            (Node::Len(inner), Node::Const(Value::Int(c))) => match inner.as_ref() {
                Node::Slot(slot) => length_vs_int(*op, *slot, *c),
                _ => generic(node),
            },
            (Node::ToString(inner), Node::Const(Value::Str(c))) => match inner.as_ref() {
                Node::Slot(slot) => text_vs_string(*op, *slot, c.to_string()),
                _ => generic(node),
            },
            _ => generic(node),
        },
        Node::And(terms) => {
            let terms: Vec<Predicate> = terms.iter().map(predicate).collect();
            Arc::new(move |slots| {
                for term in &terms {
                    if !term(slots)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            })
        }
        Node::Or(terms) => {
            let terms: Vec<Predicate> = terms.iter().map(predicate).collect();
            Arc::new(move |slots| {
                for term in &terms {
                    if term(slots)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            })
        }
        Node::Not(term) => {
            let term = predicate(term);
            Arc::new(move |slots| Ok(!term(slots)?))
        }
        Node::Method(method, receiver, argument) => match (receiver.as_ref(), argument.as_ref()) {
            (Node::Slot(slot), Node::Const(Value::Str(needle))) => {
                let (slot, needle, method) = (*slot, needle.to_string(), *method);
                Arc::new(move |slots| match slots.get(slot) {
                    Some(Value::Str(text)) => Ok(match method {
                        StrMethod::StartsWith => text.starts_with(needle.as_str()),
                        StrMethod::EndsWith => text.ends_with(needle.as_str()),
                        StrMethod::Contains => text.contains(needle.as_str()),
                    }),
                    _ => Err(Fallback),
                })
            }
            _ => generic(node),
        },
        Node::In(item, array) => match item.as_ref() {
            Node::Slot(slot) if array.iter().all(|v| matches!(v, Value::Str(_))) => {
                let slot = *slot;
                let strings: Vec<String> = array
                    .iter()
                    .filter_map(|v| match v {
                        Value::Str(s) => Some(s.to_string()),
                        _ => None,
                    })
                    .collect();
                Arc::new(move |slots| match slots.get(slot) {
                    Some(Value::Str(value)) => Ok(strings.iter().any(|s| s == value.as_ref())),
                    // Any other type equals no string (Rhai's rule for mismatched types).
                    Some(Value::Unit | Value::Bool(_) | Value::Int(_) | Value::Float(_)) => {
                        Ok(false)
                    }
                    _ => Err(Fallback),
                })
            }
            _ => generic(node),
        },
        _ => generic(node),
    }
}

fn generic(node: &Node) -> Predicate {
    let node = node.clone();
    Arc::new(move |slots| eval_bool(&node, slots))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_format_like_rust() {
        let mut buffer = [0u8; 24];
        for value in [0, 7, -7, 300, i64::MAX, i64::MIN] {
            assert_eq!(format_int(value, &mut buffer), value.to_string());
        }
    }
}
