//! The offline subcommands: `check` and `eval`.

pub mod check;
pub mod eval;
