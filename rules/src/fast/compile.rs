//! Rhai AST to fast-path tree. A condition outside the supported subset compiles to `None` and
//! stays on Rhai entirely.
//!
//! Supported: field access (nested), integer/float/string/bool/unit literals, `==` `!=` `<`
//! `<=` `>` `>=`, `&&` `||` `!`, `in` with an array literal, and the methods `starts_with`,
//! `ends_with`, `contains` (string argument), `len()` and `to_string()` on fields; and the same
//! over metadata: `meta.key`, `meta.topic`, `meta.partition`, `meta.offset`, `meta.timestamp`,
//! `meta.headers["x"]` / `meta.headers.x`, and `"x" in meta.headers`.

use rhai::{Dynamic, Expr, FnCallExpr, Stmt, AST};

use super::extract::FieldPaths;
use super::value::Value;
use crate::engine::RECORD_VARIABLE;
use crate::metadata::{MetaField, META_VARIABLE};

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A string method taking a string argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrMethod {
    /// `starts_with`
    StartsWith,
    /// `ends_with`
    EndsWith,
    /// `contains`
    Contains,
}

/// A node of the fast-path tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// A literal.
    Const(Value<'static>),
    /// A field of the record.
    Slot(usize),
    /// A comparison.
    Cmp(CmpOp, Box<Node>, Box<Node>),
    /// `a && b && ...`, left to right, short-circuit.
    And(Vec<Node>),
    /// `a || b || ...`, left to right, short-circuit.
    Or(Vec<Node>),
    /// `!a`
    Not(Box<Node>),
    /// `a in [literals]`
    In(Box<Node>, Vec<Value<'static>>),
    /// `receiver.method(argument)`
    Method(StrMethod, Box<Node>, Box<Node>),
    /// `a.len()`
    Len(Box<Node>),
    /// `a.to_string()`
    ToString(Box<Node>),
}

/// A compiled fast-path condition.
#[derive(Clone)]
pub struct FastCondition {
    /// The tree.
    pub root: Node,
    /// The tree as specialised closures (what runs).
    pub(super) predicate: super::closures::Predicate,
}

impl std::fmt::Debug for FastCondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastCondition")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl FastCondition {
    /// If the condition starts with `record.<field> == "<string>"` (the first conjunct of a
    /// top-level `&&`, or the whole condition), that slot and string. Such a rule can only match
    /// records whose field equals the string, and for any other record the first conjunct is a
    /// plain `false`: no error can be skipped by not evaluating it. Only top-level fields qualify
    /// (reading a nested field of a missing object is an error).
    pub fn index_key(&self, paths: &FieldPaths) -> Option<(usize, String)> {
        let first = match &self.root {
            Node::And(terms) => terms.first()?,
            other => other,
        };
        let Node::Cmp(CmpOp::Eq, lhs, rhs) = first else {
            return None;
        };
        let (slot, text) = match (lhs.as_ref(), rhs.as_ref()) {
            (Node::Slot(slot), Node::Const(Value::Str(text)))
            | (Node::Const(Value::Str(text)), Node::Slot(slot)) => (*slot, text),
            _ => return None,
        };
        paths.is_top_level(slot).then(|| (slot, text.to_string()))
    }
}

/// Compiles a condition's AST, interning its field paths.
pub fn compile_condition(ast: &AST, paths: &mut FieldPaths) -> Option<FastCondition> {
    if ast.iter_functions().next().is_some() {
        return None;
    }
    let [statement] = ast.statements() else {
        return None;
    };
    let root = match statement {
        Stmt::Expr(expr) => compile_expr(expr, paths)?,
        Stmt::FnCall(call, _) => compile_call(call, paths)?,
        _ => return None,
    };
    let predicate = super::closures::predicate(&root);
    Some(FastCondition { root, predicate })
}

fn literal(value: &Dynamic) -> Option<Value<'static>> {
    if value.is_unit() {
        Some(Value::Unit)
    } else if let Ok(b) = value.as_bool() {
        Some(Value::Bool(b))
    } else if let Ok(i) = value.as_int() {
        Some(Value::Int(i))
    } else if let Ok(f) = value.as_float() {
        Some(Value::Float(f))
    } else if value.is_string() {
        Some(Value::Str(value.clone().into_string().ok()?.into()))
    } else {
        None
    }
}

fn compile_expr(expr: &Expr, paths: &mut FieldPaths) -> Option<Node> {
    match expr {
        Expr::IntegerConstant(i, _) => Some(Node::Const(Value::Int(*i))),
        Expr::FloatConstant(f, _) => Some(Node::Const(Value::Float(**f))),
        Expr::StringConstant(s, _) => Some(Node::Const(Value::Str(s.to_string().into()))),
        Expr::BoolConstant(b, _) => Some(Node::Const(Value::Bool(*b))),
        Expr::Unit(_) => Some(Node::Const(Value::Unit)),
        Expr::DynamicConstant(value, _) => literal(value).map(Node::Const),
        Expr::And(terms, _) => terms
            .iter()
            .map(|t| compile_expr(t, paths))
            .collect::<Option<Vec<_>>>()
            .map(Node::And),
        Expr::Or(terms, _) => terms
            .iter()
            .map(|t| compile_expr(t, paths))
            .collect::<Option<Vec<_>>>()
            .map(Node::Or),
        Expr::FnCall(call, _) => compile_call(call, paths),
        Expr::Dot(binary, _, _) => match root_variable(&binary.lhs)? {
            RECORD_VARIABLE => compile_chain(&binary.rhs, Vec::new(), paths),
            META_VARIABLE => compile_meta(&binary.rhs, paths),
            _ => None,
        },
        _ => None,
    }
}

/// The name of an unqualified variable.
fn root_variable(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Variable(variable, _, _) if variable.2.is_empty() => Some(variable.1.as_str()),
        _ => None,
    }
}

/// What follows `meta.`: a metadata property or header, possibly with a method call on it.
fn compile_meta(expr: &Expr, paths: &mut FieldPaths) -> Option<Node> {
    let (field, method) = match expr {
        Expr::Property(property, _) => (MetaField::property(property.2.as_str())?, None),
        // `meta.headers["x"]`, `meta.headers["x"].method(..)`
        Expr::Index(binary, _, _) => {
            let Expr::Property(property, _) = &binary.lhs else {
                return None;
            };
            if property.2.as_str() != "headers" {
                return None;
            }
            match &binary.rhs {
                Expr::StringConstant(name, _) => (MetaField::Header(name.to_string()), None),
                Expr::Dot(access, _, _) => match (&access.lhs, &access.rhs) {
                    (Expr::StringConstant(name, _), Expr::MethodCall(call, _)) => {
                        (MetaField::Header(name.to_string()), Some(call))
                    }
                    _ => return None,
                },
                _ => return None,
            }
        }
        Expr::Dot(binary, _, _) => {
            let Expr::Property(property, _) = &binary.lhs else {
                return None;
            };
            match (property.2.as_str(), &binary.rhs) {
                // `meta.headers.x`, `meta.headers.x.method(..)`
                ("headers", Expr::Property(name, _)) => {
                    (MetaField::Header(name.2.to_string()), None)
                }
                ("headers", Expr::Dot(access, _, _)) => match (&access.lhs, &access.rhs) {
                    (Expr::Property(name, _), Expr::MethodCall(call, _)) => {
                        (MetaField::Header(name.2.to_string()), Some(call))
                    }
                    _ => return None,
                },
                // `meta.key.method(..)`
                (name, Expr::MethodCall(call, _)) => (MetaField::property(name)?, Some(call)),
                _ => return None,
            }
        }
        _ => return None,
    };
    let slot = Node::Slot(paths.intern_meta(field));
    match method {
        Some(call) => compile_method(slot, call),
        None => Some(slot),
    }
}

/// `"x" in meta.headers`: a presence test.
fn header_presence(container: &Expr, item: &Expr, paths: &mut FieldPaths) -> Option<Node> {
    let Expr::Dot(binary, _, _) = container else {
        return None;
    };
    let (Expr::Property(property, _), Expr::StringConstant(name, _)) = (&binary.rhs, item) else {
        return None;
    };
    (root_variable(&binary.lhs)? == META_VARIABLE && property.2.as_str() == "headers").then(|| {
        Node::Cmp(
            CmpOp::Eq,
            Box::new(Node::Slot(
                paths.intern_meta(MetaField::HasHeader(name.to_string())),
            )),
            Box::new(Node::Const(Value::Bool(true))),
        )
    })
}

/// `record.a.b...` ending in a property (a slot) or a method call on the field so far.
fn compile_chain(expr: &Expr, mut path: Vec<String>, paths: &mut FieldPaths) -> Option<Node> {
    match expr {
        Expr::Property(property, _) => {
            path.push(property.2.to_string());
            let segments: Vec<&str> = path.iter().map(String::as_str).collect();
            Some(Node::Slot(paths.intern(&segments)))
        }
        Expr::Dot(binary, _, _) => {
            let Expr::Property(property, _) = &binary.lhs else {
                return None;
            };
            path.push(property.2.to_string());
            compile_chain(&binary.rhs, path, paths)
        }
        Expr::MethodCall(call, _) if !path.is_empty() => {
            let segments: Vec<&str> = path.iter().map(String::as_str).collect();
            compile_method(Node::Slot(paths.intern(&segments)), call)
        }
        _ => None,
    }
}

/// `receiver.len()`, `.to_string()`, or a string method with a string literal argument.
fn compile_method(receiver: Node, call: &FnCallExpr) -> Option<Node> {
    if !call.namespace.is_empty() {
        return None;
    }
    let receiver = Box::new(receiver);
    match (call.name.as_str(), call.args.as_slice()) {
        ("len", []) => Some(Node::Len(receiver)),
        ("to_string", []) => Some(Node::ToString(receiver)),
        (name, [Expr::StringConstant(arg, _)]) => {
            let method = match name {
                "starts_with" => StrMethod::StartsWith,
                "ends_with" => StrMethod::EndsWith,
                "contains" => StrMethod::Contains,
                _ => return None,
            };
            Some(Node::Method(
                method,
                receiver,
                Box::new(Node::Const(Value::Str(arg.to_string().into()))),
            ))
        }
        _ => None,
    }
}

fn array_literal(expr: &Expr) -> Option<Vec<Value<'static>>> {
    match expr {
        Expr::Array(items, _) => items
            .iter()
            .map(|item| match item {
                Expr::DynamicConstant(value, _) => literal(value),
                other => match compile_expr(other, &mut FieldPaths::default())? {
                    Node::Const(value) => Some(value),
                    _ => None,
                },
            })
            .collect(),
        Expr::DynamicConstant(value, _) => {
            let array = value.read_lock::<rhai::Array>()?;
            array.iter().map(literal).collect()
        }
        _ => None,
    }
}

fn compile_call(call: &FnCallExpr, paths: &mut FieldPaths) -> Option<Node> {
    if !call.namespace.is_empty() {
        return None;
    }
    let op = match call.name.as_str() {
        "==" => Some(CmpOp::Eq),
        "!=" => Some(CmpOp::Ne),
        "<" => Some(CmpOp::Lt),
        "<=" => Some(CmpOp::Le),
        ">" => Some(CmpOp::Gt),
        ">=" => Some(CmpOp::Ge),
        _ => None,
    };
    match (op, call.name.as_str(), call.args.as_slice()) {
        (Some(op), _, [lhs, rhs]) => Some(Node::Cmp(
            op,
            Box::new(compile_expr(lhs, paths)?),
            Box::new(compile_expr(rhs, paths)?),
        )),
        (None, "!", [operand]) => Some(Node::Not(Box::new(compile_expr(operand, paths)?))),
        // `"x" in meta.headers`, or `x in [..]`: both are `contains(container, x)`.
        (None, "contains", [container, item]) => {
            header_presence(container, item, paths).or_else(|| {
                Some(Node::In(
                    Box::new(compile_expr(item, paths)?),
                    array_literal(container)?,
                ))
            })
        }
        _ => None,
    }
}
