//! Evaluation of the fast-path tree, with Rhai's semantics for every case it decides.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::compile::{CmpOp, FastCondition, Node, StrMethod};
use super::value::Value;
use super::Fallback;

impl FastCondition {
    /// The condition's result, or [`Fallback`] when Rhai must decide (including every error).
    pub fn evaluate(&self, slots: &[Value<'_>]) -> Result<bool, Fallback> {
        (self.predicate)(slots)
    }
}

/// An operand: fields and literals are compared in place; only computed values are built.
enum Operand<'s, 'a> {
    Ref(&'s Value<'a>),
    Computed(Value<'s>),
}

impl<'s> Operand<'s, '_> {
    fn get(&self) -> &Value<'_> {
        match self {
            Operand::Ref(value) => value,
            Operand::Computed(value) => value,
        }
    }
}

/// A node whose Rhai result must be a bool (conditions, `&&`/`||`/`!` operands).
pub(super) fn eval_bool(node: &Node, slots: &[Value<'_>]) -> Result<bool, Fallback> {
    match node {
        Node::Cmp(op, lhs, rhs) => {
            compare(*op, operand(lhs, slots)?.get(), operand(rhs, slots)?.get())
        }
        Node::And(terms) => {
            for term in terms {
                if !eval_bool(term, slots)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Node::Or(terms) => {
            for term in terms {
                if eval_bool(term, slots)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Node::Not(term) => Ok(!eval_bool(term, slots)?),
        Node::In(item, array) => {
            let item = operand(item, slots)?;
            for element in array {
                if compare(CmpOp::Eq, element, item.get())? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Node::Method(method, receiver, argument) => {
            let (receiver, argument) = (operand(receiver, slots)?, operand(argument, slots)?);
            match (receiver.get(), argument.get()) {
                (Value::Str(r), Value::Str(a)) => Ok(match method {
                    StrMethod::StartsWith => r.starts_with(a.as_ref()),
                    StrMethod::EndsWith => r.ends_with(a.as_ref()),
                    StrMethod::Contains => r.contains(a.as_ref()),
                }),
                _ => Err(Fallback),
            }
        }
        // A bare field or literal used as a condition must itself be a bool.
        Node::Slot(_) | Node::Const(_) | Node::Len(_) | Node::ToString(_) => {
            match operand(node, slots)?.get() {
                Value::Bool(b) => Ok(*b),
                _ => Err(Fallback),
            }
        }
    }
}

fn operand<'s, 'a>(node: &'s Node, slots: &'s [Value<'a>]) -> Result<Operand<'s, 'a>, Fallback> {
    match node {
        Node::Const(value) => Ok(Operand::Ref(value)),
        Node::Slot(slot) => match slots.get(*slot) {
            None | Some(Value::Unreachable) => Err(Fallback),
            Some(value) => Ok(Operand::Ref(value)),
        },
        Node::Len(inner) => match operand(inner, slots)?.get() {
            // Rhai counts characters, not bytes.
            Value::Str(s) => Ok(Operand::Computed(Value::Int(s.chars().count() as i64))),
            _ => Err(Fallback),
        },
        Node::ToString(inner) => match operand(inner, slots)?.get() {
            Value::Int(i) => Ok(Operand::Computed(Value::Str(Cow::Owned(i.to_string())))),
            Value::Bool(b) => Ok(Operand::Computed(Value::Str(Cow::Borrowed(if *b {
                "true"
            } else {
                "false"
            })))),
            Value::Str(s) => Ok(Operand::Computed(Value::Str(Cow::Owned(s.to_string())))),
            _ => Err(Fallback),
        },
        boolean => Ok(Operand::Computed(Value::Bool(eval_bool(boolean, slots)?))),
    }
}

fn ordered(op: CmpOp, ordering: Option<Ordering>) -> bool {
    match (op, ordering) {
        (CmpOp::Eq, Some(o)) => o == Ordering::Equal,
        (CmpOp::Ne, Some(o)) => o != Ordering::Equal,
        (CmpOp::Lt, Some(o)) => o == Ordering::Less,
        (CmpOp::Le, Some(o)) => o != Ordering::Greater,
        (CmpOp::Gt, Some(o)) => o == Ordering::Greater,
        (CmpOp::Ge, Some(o)) => o != Ordering::Less,
        // NaN: every comparison but `!=` is false, as for f64.
        (CmpOp::Ne, None) => true,
        (_, None) => false,
    }
}

/// Rhai's comparison operators (`func/builtin.rs`): numbers compare numerically (an integer
/// against a float as a float), strings by content, booleans only for equality, `()` equals
/// `()`, and values of different types are unequal (`!=` true, everything else false).
pub(super) fn compare(op: CmpOp, lhs: &Value<'_>, rhs: &Value<'_>) -> Result<bool, Fallback> {
    Ok(match (lhs, rhs) {
        (Value::Composite, _)
        | (_, Value::Composite)
        | (Value::Unreachable, _)
        | (_, Value::Unreachable) => return Err(Fallback),
        (Value::Int(a), Value::Int(b)) => ordered(op, Some(a.cmp(b))),
        (Value::Float(a), Value::Float(b)) => ordered(op, a.partial_cmp(b)),
        (Value::Int(a), Value::Float(b)) => ordered(op, (*a as f64).partial_cmp(b)),
        (Value::Float(a), Value::Int(b)) => ordered(op, a.partial_cmp(&(*b as f64))),
        (Value::Str(a), Value::Str(b)) => ordered(op, Some(a.as_ref().cmp(b.as_ref()))),
        (Value::Bool(a), Value::Bool(b)) => match op {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            _ => return Err(Fallback),
        },
        (Value::Unit, Value::Unit) => op == CmpOp::Eq,
        _ => op == CmpOp::Ne,
    })
}
