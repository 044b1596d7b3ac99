//! The one sandboxed Rhai engine every condition is compiled and evaluated with.
//!
//! Conditions come from many teams and run on every record, so the engine has only the packages a
//! condition needs (no time, no debugging, no I/O of any kind), rejects undeclared variables at
//! compile time, and bounds every resource a hostile or buggy condition could exhaust.

use rhai::packages::{
    BasicArrayPackage, BasicMapPackage, BasicMathPackage, CorePackage, LogicPackage,
    MoreStringPackage, Package,
};
use rhai::{Engine, OptimizationLevel};

/// Name the decoded record is bound to inside a condition.
pub const RECORD_VARIABLE: &str = "record";

/// Operations one condition may run on one record before it is stopped (defeats `loop {}`).
pub const MAX_OPERATIONS: u64 = 50_000;
/// Longest string a condition may build, in bytes (Kafka's default maximum record size is 1 MiB).
pub const MAX_STRING_SIZE: usize = 4 * 1024 * 1024;
/// Largest array a condition may build.
pub const MAX_ARRAY_SIZE: usize = 65_536;
/// Largest object map a condition may build.
pub const MAX_MAP_SIZE: usize = 65_536;
/// Deepest expression nesting accepted at compile time (guards the parser's stack).
pub const MAX_EXPR_DEPTH: usize = 64;
/// Deepest expression nesting inside functions and closures.
pub const MAX_FUNCTION_EXPR_DEPTH: usize = 32;
/// Deepest function-call nesting at run time (guards against runaway recursion).
pub const MAX_CALL_LEVELS: usize = 16;
/// Most variables a condition may declare.
pub const MAX_VARIABLES: usize = 64;

/// Symbols a condition must never use: dynamic code and modules.
const DISABLED_SYMBOLS: [&str; 4] = ["eval", "import", "export", "Fn"];

/// Builds the sandboxed engine. Cheap enough to call per rule set, not per record.
pub fn sandboxed_engine() -> Engine {
    let mut engine = Engine::new_raw();
    engine.register_global_module(CorePackage::new().as_shared_module());
    engine.register_global_module(LogicPackage::new().as_shared_module());
    engine.register_global_module(BasicMathPackage::new().as_shared_module());
    engine.register_global_module(MoreStringPackage::new().as_shared_module());
    engine.register_global_module(BasicArrayPackage::new().as_shared_module());
    engine.register_global_module(BasicMapPackage::new().as_shared_module());
    for symbol in DISABLED_SYMBOLS {
        engine.disable_symbol(symbol);
    }
    engine
        .set_strict_variables(true)
        .set_optimization_level(OptimizationLevel::Simple)
        .set_max_operations(MAX_OPERATIONS)
        .set_max_string_size(MAX_STRING_SIZE)
        .set_max_array_size(MAX_ARRAY_SIZE)
        .set_max_map_size(MAX_MAP_SIZE)
        .set_max_expr_depths(MAX_EXPR_DEPTH, MAX_FUNCTION_EXPR_DEPTH)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_variables(MAX_VARIABLES)
        .on_print(|_| {})
        .on_debug(|_, _, _| {});
    engine
}
