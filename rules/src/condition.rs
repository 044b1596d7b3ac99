//! A rule condition compiled once and evaluated per record.

use rhai::{ASTNode, Dynamic, Engine, EvalAltResult, Expr, FnCallExpr, Position, Scope, Stmt, AST};
use thiserror::Error;

use crate::engine::{EvaluationClock, BLOCKED_FUNCTIONS, BUDGET_TOKEN, RECORD_VARIABLE};
use crate::metadata::META_VARIABLE;

/// Why a condition does not compile, with the position users need to fix it.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("line {line}, column {column}: {message}")]
pub struct CompileError {
    /// What the parser rejected.
    pub message: String,
    /// 1-based line in the condition text (0 when unknown).
    pub line: usize,
    /// 1-based column in the condition text (0 when unknown).
    pub column: usize,
}

impl CompileError {
    fn at(message: String, position: Position) -> Self {
        CompileError {
            message,
            line: position.line().unwrap_or(0),
            column: position.position().unwrap_or(0),
        }
    }
}

/// Fails on the first call of a [`BLOCKED_FUNCTIONS`] entry, as function or method.
fn reject_blocked_calls(ast: &AST) -> Result<(), CompileError> {
    let mut blocked = None;
    ast.walk(&mut |path: &[ASTNode]| {
        let call: Option<(&FnCallExpr, &Position)> = match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(call, position) | Expr::MethodCall(call, position)))
            | Some(ASTNode::Stmt(Stmt::FnCall(call, position))) => Some((call, position)),
            _ => None,
        };
        if let Some((call, position)) = call {
            if BLOCKED_FUNCTIONS.contains(&call.name.as_str()) {
                blocked = Some(CompileError::at(
                    format!(
                        "function '{}' is not available in conditions (no blocking, time or process functions)",
                        call.name
                    ),
                    *position,
                ));
                return false;
            }
        }
        true
    });
    blocked.map_or(Ok(()), Err)
}

/// Why a condition failed on one record. Never fatal: only this rule is affected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EvalError {
    /// The condition produced something other than a bool.
    #[error("condition returned {0}, expected bool")]
    NotBool(String),
    /// Rhai stopped the condition (type mismatch, missing property, ...).
    #[error("{0}")]
    Runtime(String),
    /// The condition ran into the engine's operation limit: like a time overrun, it burns CPU
    /// on every record, and counts towards quarantine.
    #[error("{0}")]
    OperationLimit(String),
    /// The condition ran past the engine's wall-clock budget (twice: a single overrun may be
    /// the machine's fault, not the rule's).
    #[error("condition exceeded its time budget")]
    TimeBudget,
    /// The rule kept overrunning its time budget or operation limit and is no longer evaluated.
    #[error("rule quarantined after overrunning its time budget or operation limit {0} times in a row; fix the condition to route its records again")]
    Quarantined(u32),
}

impl EvalError {
    /// Short machine-readable reason, for metrics and exception headers.
    pub fn reason(&self) -> &'static str {
        match self {
            EvalError::NotBool(_) => "NotBool",
            EvalError::Runtime(_) => "Runtime",
            EvalError::OperationLimit(_) => "OperationLimit",
            EvalError::TimeBudget => "TimeBudget",
            EvalError::Quarantined(_) => "Quarantined",
        }
    }
}

/// Whether the condition reads the `meta` variable anywhere.
fn reads_meta(ast: &AST) -> bool {
    let mut found = false;
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Expr(Expr::Variable(variable, _, _))) = path.last() {
            found |= variable.1.as_str() == META_VARIABLE;
        }
        !found
    });
    found
}

/// A compiled condition.
#[derive(Clone, Debug)]
pub struct Condition {
    ast: AST,
    uses_meta: bool,
}

impl Condition {
    /// Compiles `source` with `record` and `meta` declared, so any other free variable is a
    /// compile error.
    pub fn compile(engine: &Engine, source: &str) -> Result<Self, CompileError> {
        // Plain variables here: were they constants, the optimizer could fold their placeholder
        // values into the AST.
        let mut scope = Scope::new();
        scope.push(RECORD_VARIABLE, Dynamic::UNIT);
        scope.push(META_VARIABLE, Dynamic::UNIT);
        let ast = engine
            .compile_with_scope(&scope, source)
            .map_err(|err| CompileError::at(err.err_type().to_string(), err.position()))?;
        reject_blocked_calls(&ast)?;
        let uses_meta = reads_meta(&ast);
        Ok(Condition { ast, uses_meta })
    }

    /// The compiled form, for tools that analyse conditions.
    pub fn ast(&self) -> &AST {
        &self.ast
    }

    /// Whether the condition reads `meta`: only then is the `meta` map built for it.
    pub fn uses_meta(&self) -> bool {
        self.uses_meta
    }

    /// Evaluates against a scope holding the constant `record` (and `meta`, when the condition
    /// reads it).
    ///
    /// Variables the condition declares are removed afterwards so they cannot leak into the
    /// next rule evaluated on the same record.
    ///
    /// An evaluation that runs past the engine's time budget is tried once more with a fresh
    /// budget before it counts as [`EvalError::TimeBudget`]: conditions are pure, and a single
    /// overrun is usually the thread being descheduled on a busy machine.
    pub fn evaluate(&self, engine: &Engine, scope: &mut Scope<'_>) -> Result<bool, EvalError> {
        self.evaluate_value(engine, scope)?
            .as_bool()
            .map_err(|type_name| EvalError::NotBool(type_name.to_string()))
    }

    /// Like [`Condition::evaluate`], returning whatever value the expression produces (for
    /// transforms and key expressions).
    pub fn evaluate_value(
        &self,
        engine: &Engine,
        scope: &mut Scope<'_>,
    ) -> Result<Dynamic, EvalError> {
        match self.evaluate_once(engine, scope) {
            Err(EvalError::TimeBudget) => self.evaluate_once(engine, scope),
            outcome => outcome,
        }
    }

    fn evaluate_once(&self, engine: &Engine, scope: &mut Scope<'_>) -> Result<Dynamic, EvalError> {
        let depth = scope.len();
        let result = {
            let _clock = EvaluationClock::start();
            engine.eval_ast_with_scope::<Dynamic>(scope, &self.ast)
        };
        scope.rewind(depth);
        match result {
            Ok(value) => Ok(value),
            Err(err) => match *err {
                EvalAltResult::ErrorTerminated(token, _)
                    if token.clone().into_immutable_string().ok().as_deref()
                        == Some(BUDGET_TOKEN) =>
                {
                    Err(EvalError::TimeBudget)
                }
                other @ EvalAltResult::ErrorTooManyOperations(_) => {
                    Err(EvalError::OperationLimit(other.to_string()))
                }
                other => Err(EvalError::Runtime(other.to_string())),
            },
        }
    }
}
