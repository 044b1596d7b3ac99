//! The one sandboxed Rhai engine every condition is compiled and evaluated with.
//!
//! Conditions come from many teams and run on every record, so the engine has only the packages a
//! condition needs (no time, no `sleep`, no debugging, no I/O of any kind), rejects undeclared
//! variables at compile time, and bounds every resource a hostile or buggy condition could
//! exhaust: operations, sizes, nesting, and wall-clock time per evaluation.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicIteratorPackage, BasicMapPackage, BasicMathPackage,
    BasicStringPackage, LogicPackage, MoreStringPackage, Package,
};
use rhai::{Dynamic, Engine, OptimizationLevel};

/// Name the decoded record is bound to inside a condition.
pub const RECORD_VARIABLE: &str = "record";

/// Operations one condition may run on one record before it is stopped (defeats `loop {}`).
pub const MAX_OPERATIONS: u64 = 50_000;
/// Longest string a condition may build, in bytes (Kafka's default maximum record size is 1 MiB).
/// With [`MAX_VARIABLES`] it bounds what one evaluation can hold to tens of MiB.
pub const MAX_STRING_SIZE: usize = 1024 * 1024;
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

/// Wall-clock time one condition may take on one record unless configured otherwise
/// (`--eval-budget`). Ordinary conditions take microseconds; the budget exists so that no rule
/// can stall a router's consume loop.
pub const DEFAULT_EVAL_BUDGET: Duration = Duration::from_millis(10);
/// The clock is read every this many operations, so the budget costs almost nothing.
const BUDGET_CHECK_EVERY: u64 = 8;

/// Symbols a condition must never use: dynamic code and modules.
const DISABLED_SYMBOLS: [&str; 4] = ["eval", "import", "export", "Fn"];

/// Functions a condition may not call: blocking, time and process functions, which the engine
/// does not register anyway. Naming them here turns a call into a compile error with a clear
/// message instead of a "function not found" on every record.
pub const BLOCKED_FUNCTIONS: [&str; 5] = ["sleep", "timestamp", "exit", "parse_json", "take"];

thread_local! {
    /// When the evaluation running on this thread started (set by [`EvaluationClock::start`]).
    static EVALUATION_STARTED: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Marks the start of one evaluation on this thread, for the engine's time budget; the budget
/// stops applying when the guard is dropped.
pub(crate) struct EvaluationClock(());

impl EvaluationClock {
    pub(crate) fn start() -> Self {
        EVALUATION_STARTED.with(|started| started.set(Some(Instant::now())));
        EvaluationClock(())
    }
}

impl Drop for EvaluationClock {
    fn drop(&mut self) {
        EVALUATION_STARTED.with(|started| started.set(None));
    }
}

fn budget_exceeded(budget: Duration) -> bool {
    EVALUATION_STARTED.with(|started| started.get().is_some_and(|t| t.elapsed() >= budget))
}

/// The value a condition is terminated with when it runs out of time.
pub(crate) const BUDGET_TOKEN: &str = "time budget exceeded";

/// Builds the sandboxed engine with the default time budget. Cheap enough to call per rule set,
/// not per record.
pub fn sandboxed_engine() -> Engine {
    sandboxed_engine_with_budget(DEFAULT_EVAL_BUDGET)
}

/// Builds the sandboxed engine; an evaluation running longer than `budget` is stopped with an
/// error (see [`crate::EvalError::TimeBudget`]).
pub fn sandboxed_engine_with_budget(budget: Duration) -> Engine {
    let mut engine = Engine::new_raw();
    // The parts of Rhai's core package a condition needs; its `LanguageCorePackage` (with
    // `sleep`, `exit` and friends) is deliberately left out.
    engine.register_global_module(ArithmeticPackage::new().as_shared_module());
    engine.register_global_module(BasicStringPackage::new().as_shared_module());
    engine.register_global_module(BasicIteratorPackage::new().as_shared_module());
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
        .on_debug(|_, _, _| {})
        .on_progress(move |operations| {
            (operations % BUDGET_CHECK_EVERY == 0 && budget_exceeded(budget))
                .then(|| Dynamic::from(BUDGET_TOKEN))
        });
    engine
}
