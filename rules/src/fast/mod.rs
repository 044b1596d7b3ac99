//! The fast path: conditions in a common subset of Rhai compiled to a typed expression tree over
//! **field slots**, evaluated natively on values extracted from the record in one pass.
//!
//! Semantics stay Rhai's by construction: the tree evaluates only the typed cases whose result
//! is certain (same-type and int/float comparisons, mismatched-type comparisons by Rhai's own
//! rule, string functions on strings, booleans in `&&`/`||`/`!`). Anything else, and every case
//! where Rhai raises an error, yields [`Fallback`], and that rule is evaluated by Rhai for that
//! record, producing Rhai's exact result or error.

pub mod closures;
pub mod compile;
pub mod eval;
pub mod extract;
pub mod value;

pub use compile::{compile_condition, FastCondition};
pub use extract::{extract_slots, fill_meta_slots, FieldPaths};
pub use value::Value;

/// The fast path cannot decide this record for this rule; Rhai must.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fallback;
