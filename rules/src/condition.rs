//! A rule condition compiled once and evaluated per record.

use rhai::{Dynamic, Engine, Scope, AST};
use thiserror::Error;

use crate::engine::RECORD_VARIABLE;

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

/// Why a condition failed on one record. Never fatal: only this rule is affected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EvalError {
    /// The condition produced something other than a bool.
    #[error("condition returned {0}, expected bool")]
    NotBool(String),
    /// Rhai stopped the condition (type mismatch, missing property, operation limit, ...).
    #[error("{0}")]
    Runtime(String),
}

/// A compiled condition.
#[derive(Clone, Debug)]
pub struct Condition {
    ast: AST,
}

impl Condition {
    /// Compiles `source` with `record` declared, so any other free variable is a compile error.
    pub fn compile(engine: &Engine, source: &str) -> Result<Self, CompileError> {
        // `record` is a plain variable here: were it a constant, the optimizer could fold its
        // placeholder value into the AST.
        let mut scope = Scope::new();
        scope.push(RECORD_VARIABLE, Dynamic::UNIT);
        let ast = engine
            .compile_with_scope(&scope, source)
            .map_err(|err| CompileError {
                message: err.err_type().to_string(),
                line: err.position().line().unwrap_or(0),
                column: err.position().position().unwrap_or(0),
            })?;
        Ok(Condition { ast })
    }

    /// The compiled form, for tools that analyse conditions.
    pub fn ast(&self) -> &AST {
        &self.ast
    }

    /// Evaluates against a scope whose last entry is the constant `record`.
    ///
    /// Variables the condition declares are removed afterwards so they cannot leak into the
    /// next rule evaluated on the same record.
    pub fn evaluate(&self, engine: &Engine, scope: &mut Scope<'_>) -> Result<bool, EvalError> {
        let depth = scope.len();
        let result = engine.eval_ast_with_scope::<Dynamic>(scope, &self.ast);
        scope.rewind(depth);
        match result {
            Ok(value) => value
                .as_bool()
                .map_err(|type_name| EvalError::NotBool(type_name.to_string())),
            Err(err) => Err(EvalError::Runtime(err.to_string())),
        }
    }
}
