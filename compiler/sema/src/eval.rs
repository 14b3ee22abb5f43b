//! Expressions: literals, names, operators, member access, and calls of ops, built-in
//! constructors and user compositions.

use crate::check::{Checker, Imported, Inst, Scope, Typed};
use crate::hir::*;
use crate::prelude::{Decl, DeclKind};
use crate::types::*;
use mlp_diagnostics::{did_you_mean, Diagnostic, Span};
use mlp_syntax::ast::{self, BinOp, Expr, ExprKind, UnOp};
use serde_json::{json, Value};

/// How many user compositions may be expanded inside one another.
pub(crate) const MAX_COMPOSITION_DEPTH: usize = 256;

/// An argument bound to a parameter: its value and the span to blame.
#[derive(Clone, Debug)]
pub(crate) struct Bound {
    pub t: Typed,
    pub span: Span,
    /// True when the value came from the parameter's default.
    pub default: bool,
}

impl<'a> Checker<'a> {
    pub(crate) fn expr(&mut self, e: &Expr, scope: &mut Scope) -> Typed {
        let span = e.span;
        let c = |ty: Ty, v: Value| Typed {
            ty,
            val: Val::Const(v),
            origin: span,
        };
        match &e.kind {
            ExprKind::Int { value, .. } => c(Ty::Int, json!(value)),
            ExprKind::Float { value, .. } => {
                if value.is_finite() {
                    c(Ty::Float, json!(value))
                } else {
                    self.diags.push(
                        Diagnostic::error("E0006", "number out of range")
                            .at(span, "not a finite number"),
                    );
                    Typed::unknown(span)
                }
            }
            ExprKind::Quantity {
                value,
                number,
                unit,
            } => match unit_info(unit) {
                Some((kind, factor, base)) => c(
                    Ty::Quantity(kind),
                    json!({"quantity": kind.plan_name(), "value": value * factor, "unit": base, "text": format!("{number}{}{unit}", if unit.starts_with('/') { "" } else { " " })}),
                ),
                None => {
                    self.diags.push(
                        Diagnostic::error("E0006", format!("unknown unit `{unit}`"))
                            .at(span, "unknown unit"),
                    );
                    Typed::unknown(span)
                }
            },
            ExprKind::Str(s) => c(Ty::Str, json!(s)),
            ExprKind::Bool(b) => c(Ty::Bool, json!(b)),
            ExprKind::Paren(x) => self.expr(x, scope),
            ExprKind::Ident(name) => self.ident_value(name, span, scope),
            ExprKind::List(items) => {
                let mut elem: Option<Ty> = None;
                let mut vals = Vec::with_capacity(items.len());
                for it in items {
                    let t = self.expr(it, scope);
                    match &elem {
                        None => elem = Some(t.ty.clone()),
                        Some(want) => {
                            let want = want.clone();
                            self.expect(&want, &t, it.span, "every element of a list");
                        }
                    }
                    vals.push(t.val);
                }
                let elem = elem.unwrap_or_else(|| self.sub.fresh_ty("T"));
                Typed {
                    ty: Ty::List(Box::new(elem)),
                    val: Val::list(vals),
                    origin: span,
                }
            }
            ExprKind::Record(fields) => {
                let mut tys = Vec::new();
                let mut vals = Vec::new();
                let mut seen = std::collections::HashMap::new();
                for (name, fe) in fields {
                    if let Some(prev) = seen.insert(name.name.clone(), name.span) {
                        self.diags.push(
                            Diagnostic::error(
                                "E0103",
                                format!("field `{}` appears twice", name.name),
                            )
                            .at(name.span, "again here")
                            .also(prev, "first here"),
                        );
                        continue;
                    }
                    let t = self.expr(fe, scope);
                    tys.push((name.name.clone(), t.ty));
                    vals.push((name.name.clone(), t.val));
                }
                Typed {
                    ty: Ty::Record(tys),
                    val: Val::record(vals),
                    origin: span,
                }
            }
            ExprKind::Columns(_) => {
                self.diags.push(
                    Diagnostic::error(
                        "E0201",
                        "a column block is only valid as the argument of `derive`",
                    )
                    .at(span, "column block here")
                    .help("write `table.derive { name = expression }`"),
                );
                Typed::unknown(span)
            }
            ExprKind::Unary { op, operand } => {
                let t = self.expr(operand, scope);
                self.unary(*op, t, span)
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.expr(lhs, scope);
                let r = self.expr(rhs, scope);
                self.binary(*op, l, r, lhs.span, rhs.span, span)
            }
            ExprKind::Member { base, name } => self.member(base, name, None, span, scope),
            ExprKind::Call { callee, args } => match &callee.kind {
                ExprKind::Member { base, name } => self.member(base, name, Some(args), span, scope),
                ExprKind::Ident(name) => {
                    if scope.vars.contains_key(name) {
                        self.diags.push(
                            Diagnostic::error(
                                "E0209",
                                format!("`{name}` is a value, not a function"),
                            )
                            .at(callee.span, "cannot be called"),
                        );
                        return Typed::unknown(span);
                    }
                    match self.lookup_callable(name, scope) {
                        Some(decl) => self.call(&decl, None, args, span, callee.span, scope),
                        None => {
                            self.unknown_name(name, callee.span, scope);
                            Typed::unknown(span)
                        }
                    }
                }
                _ => {
                    self.diags.push(
                        Diagnostic::error("E0209", "this expression cannot be called")
                            .at(callee.span, "not a function")
                            .help("only functions and ops can be called"),
                    );
                    Typed::unknown(span)
                }
            },
        }
    }

    fn unknown_name(&mut self, name: &str, span: Span, scope: &Scope) {
        if matches!(self.imports.get(name), Some(Imported::Poisoned)) {
            return;
        }
        let names = self.visible_names(scope);
        let mut d = Diagnostic::error("E0105", format!("unknown name `{name}`"))
            .at(span, "not found in this scope");
        if let Some(s) = did_you_mean(name, names.iter().map(|s| s.as_str())) {
            d = d.help(format!("did you mean `{s}`?"));
        } else if let Some(m) = self.stdlib_home(name) {
            d = d.help(format!(
                "`{name}` is in the standard library: add `import {m}.{{{name}}}`"
            ));
        }
        self.diags.push(d);
    }

    fn ident_value(&mut self, name: &str, span: Span, scope: &mut Scope) -> Typed {
        if let Some(t) = scope.vars.get(name) {
            return t.clone();
        }
        if let Some(decl) = self.lookup_callable(name, scope) {
            // A constructor whose parameters all have defaults can be named without `()`.
            let callable_bare =
                decl.kind == DeclKind::Builtin && decl.params.iter().all(|p| p.default.is_some());
            if callable_bare {
                return self.call(&decl, None, &[], span, span, scope);
            }
            self.diags.push(
                Diagnostic::error(
                    "E0209",
                    format!("`{name}` is a function; call it with arguments"),
                )
                .at(span, "used as a value")
                .help(format!("write `{name}(..)`: {}", self.signature_of(&decl))),
            );
            return Typed::unknown(span);
        }
        if let Some(Imported::Module(m)) = self.imports.get(name) {
            self.diags.push(
                Diagnostic::error("E0209", format!("`{name}` is a module, not a value"))
                    .at(span, "module")
                    .help(format!("use one of its items: `{m}.<name>(..)`")),
            );
            return Typed::unknown(span);
        }
        self.unknown_name(name, span, scope);
        Typed::unknown(span)
    }

    pub(crate) fn signature_of(&self, decl: &Decl) -> String {
        let src = if decl.file == self.path {
            self.text
        } else {
            self.prelude.source_of(&decl.file).unwrap_or("")
        };
        decl.signature(src)
    }

    fn member(
        &mut self,
        base: &Expr,
        name: &ast::Ident,
        args: Option<&[ast::Arg]>,
        span: Span,
        scope: &mut Scope,
    ) -> Typed {
        // `table.csv(..)` where `table` is an imported module.
        if let ExprKind::Ident(m) = &base.kind {
            if !scope.vars.contains_key(m) {
                if let Some(Imported::Module(module)) = self.imports.get(m).cloned() {
                    let Some(decl) = self.prelude.decl(&module, &name.name).cloned() else {
                        let items = self.prelude.modules[&module]
                            .items
                            .keys()
                            .map(|s| s.as_str());
                        let mut d = Diagnostic::error(
                            "E0208",
                            format!("module `{module}` has no `{}`", name.name),
                        )
                        .at(name.span, "not in this module");
                        if let Some(s) = did_you_mean(&name.name, items) {
                            d = d.help(format!("did you mean `{s}`?"));
                        }
                        self.diags.push(d);
                        return Typed::unknown(span);
                    };
                    return match args {
                        Some(args) => self.call(&decl, None, args, span, name.span, scope),
                        None if decl.kind == DeclKind::Builtin
                            && decl.params.iter().all(|p| p.default.is_some()) =>
                        {
                            self.call(&decl, None, &[], span, name.span, scope)
                        }
                        None => {
                            self.diags.push(
                                Diagnostic::error(
                                    "E0209",
                                    format!("`{m}.{}` is a function; call it", name.name),
                                )
                                .at(span, "used as a value"),
                            );
                            Typed::unknown(span)
                        }
                    };
                }
            }
        }
        let recv = self.expr(base, scope);
        let rty = self.sub.shallow(&recv.ty);
        if matches!(rty, Ty::Unknown) {
            if let Some(args) = args {
                for a in args {
                    if !matches!(a.value.kind, ExprKind::Columns(_)) {
                        self.expr(&a.value, scope);
                    }
                }
            }
            return Typed::unknown(span);
        }
        // Record fields.
        if let Ty::Record(fields) = &rty {
            if let Some((_, fty)) = fields.iter().find(|(n, _)| *n == name.name) {
                if args.is_some() {
                    self.diags.push(
                        Diagnostic::error(
                            "E0209",
                            format!("field `{}` is not a function", name.name),
                        )
                        .at(name.span, "a field"),
                    );
                    return Typed::unknown(span);
                }
                return self.project(recv.clone(), &name.name, fty.clone(), span);
            }
        }
        // Methods: declarations whose first parameter is `self` and accepts the receiver.
        let candidates = self
            .prelude
            .methods
            .get(&name.name)
            .cloned()
            .unwrap_or_default();
        let head = head_of(&rty);
        let mut chosen = None;
        for (m, n) in &candidates {
            let decl = self.prelude.decl(m, n).unwrap();
            if self_head_matches(decl, &head) {
                chosen = Some(decl.clone());
                break;
            }
        }
        let Some(decl) = chosen else {
            let shown = self.sub.show(&rty);
            let mut options: Vec<String> = Vec::new();
            for (mname, list) in &self.prelude.methods {
                for (m, n) in list {
                    if self_head_matches(self.prelude.decl(m, n).unwrap(), &head) {
                        options.push(mname.clone());
                    }
                }
            }
            if let Ty::Record(fs) = &rty {
                options.extend(fs.iter().map(|(n, _)| n.clone()));
            }
            let mut d = Diagnostic::error(
                "E0208",
                format!("`{shown}` has no field or method `{}`", name.name),
            )
            .at(name.span, "unknown member");
            if let Some(s) = did_you_mean(&name.name, options.iter().map(|s| s.as_str())) {
                d = d.help(format!("did you mean `{s}`?"));
            } else if !options.is_empty() {
                options.sort();
                options.dedup();
                d = d.help(format!("available: {}", options.join(", ")));
            }
            self.diags.push(d);
            return Typed::unknown(span);
        };
        let recv_span = base.span;
        let bound = Bound {
            t: recv,
            span: recv_span,
            default: false,
        };
        match args {
            Some(args) => self.call(&decl, Some(bound), args, span, name.span, scope),
            None => {
                let rest_defaulted = decl.params.iter().skip(1).all(|p| p.default.is_some());
                if !rest_defaulted {
                    self.diags.push(
                        Diagnostic::error(
                            "E0207",
                            format!("method `{}` needs arguments", name.name),
                        )
                        .at(name.span, "called without arguments")
                        .help(self.signature_of(&decl)),
                    );
                    return Typed::unknown(span);
                }
                self.call(&decl, Some(bound), &[], span, name.span, scope)
            }
        }
    }

    /// `record.field`: a constant projection, or a `core.get` node for a runtime record.
    fn project(&mut self, recv: Typed, field: &str, fty: Ty, span: Span) -> Typed {
        match &recv.val {
            Val::Const(Value::Object(m)) => Typed {
                ty: fty,
                val: Val::Const(m.get(field).cloned().unwrap_or(Value::Null)),
                origin: span,
            },
            Val::Record(fs) => {
                let v = fs
                    .iter()
                    .find(|(n, _)| n == field)
                    .map(|(_, v)| v.clone())
                    .unwrap_or(Val::Unknown);
                Typed {
                    ty: fty,
                    val: v,
                    origin: span,
                }
            }
            Val::Node(id) => {
                let base = match &self.cur_binding {
                    Some(b) if self.top_span == Some(span) => format!("{}.{b}", self.pipeline),
                    Some(b) => format!("{}.{b}/{field}", self.pipeline),
                    None => format!("{}.{field}", self.pipeline),
                };
                let nid = self.unique_id(base);
                let node = HNode {
                    id: nid.clone(),
                    binding: self.cur_binding.clone(),
                    kind: NodeKind::Op,
                    op: "core.get".into(),
                    op_version: 1,
                    args: vec![
                        ("value".into(), Val::Node(id.clone())),
                        ("field".into(), Val::Const(json!(field))),
                    ],
                    ty: String::new(),
                    device: crate::prelude::Device::Any,
                    memory: None,
                    gpu: 0,
                    cpu: None,
                    span,
                };
                self.push_node(node, fty.clone());
                Typed {
                    ty: fty,
                    val: Val::Node(nid),
                    origin: span,
                }
            }
            _ => Typed {
                ty: fty,
                val: Val::Unknown,
                origin: span,
            },
        }
    }

    fn unary(&mut self, op: UnOp, t: Typed, span: Span) -> Typed {
        let ty = self.sub.shallow(&t.ty);
        match (op, &ty) {
            (_, Ty::Unknown) => Typed::unknown(span),
            (UnOp::Not, Ty::Bool) => {
                let val = match t.val.as_const().and_then(|v| v.as_bool()) {
                    Some(b) => Val::Const(json!(!b)),
                    None => t.val,
                };
                Typed {
                    ty,
                    val,
                    origin: span,
                }
            }
            (UnOp::Neg, Ty::Int | Ty::Float | Ty::Quantity(_)) => {
                let val = match t.val.as_const() {
                    Some(Value::Number(n)) if n.is_i64() => match n.as_i64().unwrap().checked_neg()
                    {
                        Some(v) => Val::Const(json!(v)),
                        None => {
                            self.diags.push(
                                Diagnostic::error("E0210", "integer overflow")
                                    .at(span, "the negation does not fit in 64 bits"),
                            );
                            return Typed::unknown(span);
                        }
                    },
                    Some(Value::Number(n)) => Val::Const(json!(-n.as_f64().unwrap_or(0.0))),
                    Some(Value::Object(m)) if m.contains_key("quantity") => {
                        let mut m = m.clone();
                        let v = m.get("value").and_then(|v| v.as_f64()).unwrap_or(0.0);
                        m.insert("value".into(), json!(-v));
                        if let Some(Value::String(s)) = m.get("text").cloned() {
                            m.insert("text".into(), json!(format!("-{s}")));
                        }
                        Val::Const(Value::Object(m))
                    }
                    _ => t.val,
                };
                Typed {
                    ty,
                    val,
                    origin: span,
                }
            }
            _ => {
                let shown = self.sub.show(&ty);
                let sym = if op == UnOp::Neg { "-" } else { "!" };
                let code = if matches!(ty, Ty::Secret) {
                    "E0206"
                } else {
                    "E0201"
                };
                self.diags.push(
                    Diagnostic::error(code, format!("`{sym}` cannot be applied to `{shown}`"))
                        .at(span, format!("found `{shown}`")),
                );
                Typed::unknown(span)
            }
        }
    }

    fn binary(&mut self, op: BinOp, l: Typed, r: Typed, ls: Span, rs: Span, span: Span) -> Typed {
        let lt = self.sub.resolve(&l.ty);
        let rt = self.sub.resolve(&r.ty);
        if matches!(lt, Ty::Unknown) || matches!(rt, Ty::Unknown) {
            return Typed::unknown(span);
        }
        if lt.contains_secret() || rt.contains_secret() {
            let at = if lt.contains_secret() { ls } else { rs };
            self.diags.push(
                Diagnostic::error("E0206", format!("a secret cannot be an operand of `{}`", op.symbol()))
                    .at(at, "this is a secret")
                    .help("secrets cannot be combined into strings or compared; pass them whole to a `Secret` parameter"),
            );
            return Typed::unknown(span);
        }
        let sym = op.symbol();
        let bad = |c: &mut Checker, code: &str, help: String| {
            let (a, b) = (c.sub.show(&lt), c.sub.show(&rt));
            c.diags.push(
                Diagnostic::error(code, format!("`{sym}` cannot combine `{a}` and `{b}`"))
                    .at(span, format!("`{a}` {sym} `{b}`"))
                    .also(ls, format!("`{a}`"))
                    .also(rs, format!("`{b}`"))
                    .help(help),
            );
            Typed::unknown(span)
        };
        let num = |t: &Ty| matches!(t, Ty::Int | Ty::Float);
        let result_ty = match op {
            BinOp::Or | BinOp::And => {
                if lt == Ty::Bool && rt == Ty::Bool {
                    Ty::Bool
                } else {
                    return bad(self, "E0201", "`&&` and `||` combine `Bool` values".into());
                }
            }
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let ok = (num(&lt) && num(&rt)) || lt == rt;
                if !ok {
                    let code = if matches!(lt, Ty::Quantity(_)) || matches!(rt, Ty::Quantity(_)) {
                        "E0202"
                    } else {
                        "E0201"
                    };
                    return bad(
                        self,
                        code,
                        "both sides of a comparison must have the same type".into(),
                    );
                }
                Ty::Bool
            }
            BinOp::Add | BinOp::Sub => {
                match (&lt, &rt) {
                    (Ty::Int, Ty::Int) => Ty::Int,
                    (a, b) if num(a) && num(b) => Ty::Float,
                    (Ty::Quantity(a), Ty::Quantity(b)) if a == b => lt.clone(),
                    (Ty::Str, Ty::Str) if op == BinOp::Add => Ty::Str,
                    (Ty::Quantity(_), _) | (_, Ty::Quantity(_)) => {
                        return bad(
                            self,
                            "E0202",
                            "only quantities of the same kind add up; a plain number has no unit"
                                .into(),
                        )
                    }
                    _ => return bad(
                        self,
                        "E0201",
                        "`+` and `-` work on numbers, quantities of one kind, and `+` on strings"
                            .into(),
                    ),
                }
            }
            BinOp::Mul => match (&lt, &rt) {
                (Ty::Int, Ty::Int) => Ty::Int,
                (a, b) if num(a) && num(b) => Ty::Float,
                (Ty::Quantity(_), b) if num(b) => lt.clone(),
                (a, Ty::Quantity(_)) if num(a) => rt.clone(),
                (Ty::Quantity(_), Ty::Quantity(_)) => {
                    return bad(
                        self,
                        "E0202",
                        "two quantities cannot be multiplied; scale one by a plain number".into(),
                    )
                }
                _ => {
                    return bad(
                        self,
                        "E0201",
                        "`*` works on numbers and scales quantities".into(),
                    )
                }
            },
            BinOp::Div => match (&lt, &rt) {
                (a, b) if num(a) && num(b) => {
                    if lt == Ty::Int && rt == Ty::Int {
                        Ty::Int
                    } else {
                        Ty::Float
                    }
                }
                (Ty::Quantity(_), b) if num(b) => lt.clone(),
                (Ty::Quantity(a), Ty::Quantity(b)) if a == b => Ty::Float,
                (Ty::Quantity(_), _) | (_, Ty::Quantity(_)) => {
                    return bad(
                        self,
                        "E0202",
                        "a quantity divides by a number or by a quantity of the same kind".into(),
                    )
                }
                _ => return bad(self, "E0201", "`/` works on numbers and quantities".into()),
            },
        };
        // Constant folding, so parameters and arithmetic can size dimensions.
        let (Some(a), Some(b)) = (l.val.as_const(), r.val.as_const()) else {
            if !l.val.is_const() && !matches!(l.val, Val::Unknown)
                || !r.val.is_const() && !matches!(r.val, Val::Unknown)
            {
                self.diags.push(
                    Diagnostic::error("E0212", format!("`{sym}` needs values known before the pipeline runs"))
                        .at(span, "one side is computed at run time")
                        .help("arithmetic on run-time data belongs in an op (for tables: `derive { .. }`)"),
                );
                return Typed::unknown(span);
            }
            return Typed {
                ty: result_ty,
                val: Val::Unknown,
                origin: span,
            };
        };
        match fold(op, a, b, &result_ty) {
            Ok(v) => Typed {
                ty: result_ty,
                val: Val::Const(v),
                origin: span,
            },
            Err(msg) => {
                self.diags
                    .push(Diagnostic::error("E0210", msg).at(span, "here"));
                Typed::unknown(span)
            }
        }
    }

    // ------------------------------------------------------------------ calls

    /// Calls a declaration: binds arguments to parameters, instantiates the signature,
    /// checks every argument, refines the result with built-in rules, and evaluates.
    pub(crate) fn call(
        &mut self,
        decl: &Decl,
        recv: Option<Bound>,
        args: &[ast::Arg],
        span: Span,
        name_span: Span,
        scope: &mut Scope,
    ) -> Typed {
        let n = decl.params.len();
        let mut bound: Vec<Option<Bound>> = vec![None; n];
        let mut columns: Option<&Expr> = None;
        let mut next = 0usize;
        if let Some(r) = recv {
            if n > 0 {
                bound[0] = Some(r);
                next = 1;
            }
        }
        let mut seen_named = false;
        for a in args {
            let idx = if let Some(an) = &a.name {
                seen_named = true;
                match decl
                    .params
                    .iter()
                    .position(|p| p.name.name == an.name && p.name.name != "self")
                {
                    Some(i) => i,
                    None => {
                        let names = decl
                            .params
                            .iter()
                            .map(|p| p.name.name.as_str())
                            .filter(|n| *n != "self");
                        let mut d = Diagnostic::error(
                            "E0207",
                            format!("`{}` has no parameter `{}`", decl.name, an.name),
                        )
                        .at(an.span, "unknown argument");
                        d = match did_you_mean(&an.name, names) {
                            Some(s) => d.help(format!("did you mean `{s}`?")),
                            None => d.help(self.signature_of(decl)),
                        };
                        self.diags.push(d);
                        self.eval_discard(&a.value, scope);
                        continue;
                    }
                }
            } else {
                if seen_named && !matches!(a.value.kind, ExprKind::Columns(_)) {
                    self.diags.push(
                        Diagnostic::error(
                            "E0207",
                            "a positional argument cannot follow named ones",
                        )
                        .at(a.span, "positional argument")
                        .help("name this argument too, or move it before the named ones"),
                    );
                    self.eval_discard(&a.value, scope);
                    continue;
                }
                while next < n && bound[next].is_some() {
                    next += 1;
                }
                if next >= n {
                    self.diags.push(
                        Diagnostic::error(
                            "E0207",
                            format!(
                                "`{}` takes {} argument(s), this is one too many",
                                decl.name, n
                            ),
                        )
                        .at(a.span, "extra argument")
                        .help(self.signature_of(decl)),
                    );
                    self.eval_discard(&a.value, scope);
                    continue;
                }
                next
            };
            if bound[idx].is_some() {
                self.diags.push(
                    Diagnostic::error(
                        "E0207",
                        format!("argument `{}` is given twice", decl.params[idx].name.name),
                    )
                    .at(a.span, "given again here"),
                );
                self.eval_discard(&a.value, scope);
                continue;
            }
            let t = if let ExprKind::Columns(_) = &a.value.kind {
                columns = Some(&a.value);
                Typed {
                    ty: Ty::Columns,
                    val: Val::Unknown,
                    origin: a.value.span,
                }
            } else {
                self.expr(&a.value, scope)
            };
            bound[idx] = Some(Bound {
                t,
                span: a.value.span,
                default: false,
            });
        }
        let mut missing = false;
        for (i, p) in decl.params.iter().enumerate() {
            if bound[i].is_some() {
                continue;
            }
            match &p.default {
                Some(d) => {
                    let mut dscope = Scope {
                        module: if decl.module.is_empty() {
                            None
                        } else {
                            Some(decl.module.clone())
                        },
                        ..Scope::default()
                    };
                    let key = format!("{}({})", decl.qualified(), p.name.name);
                    let t = if self.default_stack.contains(&key) {
                        self.diags.push(
                            Diagnostic::error("E0108", format!("the default of `{}` in `{}` depends on itself", p.name.name, decl.name))
                                .at(d.span, "this default calls back into the same function")
                                .help("defaults are evaluated at each call; give the parameter a constant default"),
                        );
                        Typed::unknown(span)
                    } else {
                        self.default_stack.push(key);
                        let t = self.expr(d, &mut dscope);
                        self.default_stack.pop();
                        t
                    };
                    bound[i] = Some(Bound {
                        t,
                        span,
                        default: true,
                    });
                }
                None => {
                    missing = true;
                    let ty_text = self.slice_of(decl, p.ty.span());
                    self.diags.push(
                        Diagnostic::error(
                            "E0207",
                            format!(
                                "`{}` needs the argument `{}: {ty_text}`",
                                decl.name, p.name.name
                            ),
                        )
                        .at(name_span, format!("missing `{}`", p.name.name))
                        .help(self.signature_of(decl)),
                    );
                }
            }
        }
        // Instantiate the signature with the constant Int arguments known now.
        let mut inst = Inst::default();
        for g in &decl.generics {
            let v = self.sub.fresh_ty(g);
            inst.generics.insert(g.clone(), v);
        }
        for (i, p) in decl.params.iter().enumerate() {
            if is_int_type(&p.ty) {
                inst.int_params.insert(
                    p.name.name.clone(),
                    bound[i].as_ref().and_then(|b| b.t.val.as_i64()),
                );
            }
        }
        let decl_file = decl.file.clone();
        let decl_file_opt = if decl.file == self.path {
            None
        } else {
            Some(decl_file.as_str())
        };
        let mut param_tys = Vec::with_capacity(n);
        for (i, p) in decl.params.iter().enumerate() {
            let pt = self.ty_of(&p.ty, &mut inst, decl_file_opt);
            if let Some(b) = &bound[i] {
                let generic_param = matches!(&p.ty, ast::TypeExpr::Named { name, .. } if decl.generics.contains(&name.name));
                let resolved = self.sub.resolve(&b.t.ty);
                if generic_param && (resolved.contains_secret()) {
                    self.diags.push(
                        Diagnostic::error("E0206", format!("a secret cannot be passed to `{}`", p.name.name))
                            .at(b.span, "this is a secret")
                            .help(format!(
                                "`{}` of `{}` accepts any value, and could log, hash or write it; secrets only go to parameters declared `Secret`",
                                p.name.name, decl.name
                            )),
                    );
                } else if let Some(fits) = self.date_literal(&pt, &b.t.clone(), b.span) {
                    if !fits {
                        let b = bound[i].as_mut().unwrap();
                        b.t.ty = Ty::Unknown;
                        b.t.val = Val::Unknown;
                    }
                } else if matches!(b.t.ty, Ty::Columns)
                    && !matches!(self.sub.shallow(&pt), Ty::Columns)
                {
                    self.diags.push(
                        Diagnostic::error(
                            "E0201",
                            "a column block is only valid as the argument of `derive`",
                        )
                        .at(b.span, "column block here")
                        .help("write `table.derive { name = expression }`"),
                    );
                    let b = bound[i].as_mut().unwrap();
                    b.t.ty = Ty::Unknown;
                } else if let Err(m) = self.sub.unify(&pt, &b.t.ty, b.span) {
                    let what = format!("argument `{}` of `{}`", p.name.name, decl.name);
                    let mut d = self.mismatch(&pt, &b.t.ty, m, b.span, &what);
                    if !b.default
                        && b.t.origin != b.span
                        && !b.span.to(b.t.origin).is_empty()
                        && !contains(b.span, b.t.origin)
                    {
                        d = d.also(b.t.origin, "defined here");
                    }
                    if b.default {
                        d = d.note("the value is the parameter's default");
                    }
                    self.diags.push(d);
                    let b = bound[i].as_mut().unwrap();
                    b.t.ty = Ty::Unknown;
                    b.t.val = Val::Unknown;
                }
            }
            param_tys.push(pt);
        }
        let mut ret = match &decl.ret {
            Some(r) => self.ty_of(r, &mut inst, decl_file_opt),
            None => Ty::Unknown,
        };
        // A parameter that sizes a dimension must be positive.
        for name in &inst.used_as_dim {
            let Some(i) = decl.params.iter().position(|p| &p.name.name == name) else {
                continue;
            };
            if let Some(b) = &bound[i] {
                if let Some(v) = b.t.val.as_i64() {
                    if v <= 0 {
                        self.diags.push(
                            Diagnostic::error(
                                "E0210",
                                format!(
                                    "`{name}` sizes a dimension and must be positive, found {v}"
                                ),
                            )
                            .at(b.span, "not a valid size")
                            .help(format!("give `{name}` a value of at least 1")),
                        );
                        return Typed::unknown(span);
                    }
                }
            }
        }
        if missing {
            return Typed {
                ty: ret,
                val: Val::Unknown,
                origin: span,
            };
        }
        let mut bound: Vec<Bound> = bound.into_iter().map(|b| b.unwrap()).collect();
        match self.intrinsic(decl, &bound, &param_tys, ret.clone(), columns, span) {
            Some(Ok(t)) => ret = t,
            Some(Err(())) => return Typed::unknown(span),
            None => {}
        }
        if let Some(cols) = self.pending_columns.take() {
            if let Some(i) = bound.iter().position(|b| matches!(b.t.ty, Ty::Columns)) {
                bound[i].t.val = Val::Const(cols);
            }
        }
        match decl.kind {
            DeclKind::Builtin => self.construct(decl, &bound, ret, span),
            DeclKind::Op => self.op_node(decl, bound, ret, span),
            DeclKind::Composition => self.expand(decl, bound, ret, span),
        }
    }

    fn slice_of(&self, decl: &Decl, s: Span) -> String {
        let src = if decl.file == self.path {
            self.text
        } else {
            self.prelude.source_of(&decl.file).unwrap_or("")
        };
        src.get(s.range()).unwrap_or("?").to_string()
    }

    fn eval_discard(&mut self, e: &Expr, scope: &mut Scope) {
        if !matches!(e.kind, ExprKind::Columns(_)) {
            self.expr(e, scope);
        }
    }

    /// A built-in constructor: a configuration value known at compile time.
    fn construct(&mut self, decl: &Decl, bound: &[Bound], ret: Ty, span: Span) -> Typed {
        let q = decl.qualified();
        let mut args = serde_json::Map::new();
        for (p, b) in decl.params.iter().zip(bound) {
            match &b.t.val {
                Val::Const(v) => {
                    args.insert(p.name.name.clone(), v.clone());
                }
                Val::Unknown => {
                    return Typed {
                        ty: ret,
                        val: Val::Unknown,
                        origin: span,
                    }
                }
                _ => {
                    self.diags.push(
                        Diagnostic::error("E0212", format!("`{}` is configuration: its arguments must be known before the pipeline runs", decl.name))
                            .at(b.span, format!("`{}` is computed at run time", p.name.name))
                            .help("pass a literal, a pipeline parameter, or another configuration value"),
                    );
                    return Typed::unknown(span);
                }
            }
        }
        let val = if q == "core.secret" {
            json!({"secret": args.get("name").cloned().unwrap_or(Value::Null)})
        } else {
            json!({"fn": q, "args": Value::Object(args)})
        };
        Typed {
            ty: ret,
            val: Val::Const(val),
            origin: span,
        }
    }

    /// An op call: a node of the plan.
    fn op_node(&mut self, decl: &Decl, bound: Vec<Bound>, ret: Ty, span: Span) -> Typed {
        let base = match &self.cur_binding {
            Some(b) if self.top_span == Some(span) && self.comp_stack.is_empty() => {
                format!("{}.{b}", self.pipeline)
            }
            Some(b) => format!("{}.{b}/{}", self.pipeline, decl.name),
            None => format!("{}.{}", self.pipeline, decl.name),
        };
        let id = self.unique_id(base);
        let args: Vec<(String, Val)> = decl
            .params
            .iter()
            .zip(bound)
            .map(|(p, b)| (p.name.name.clone(), b.t.val))
            .collect();
        if matches!(decl.name.as_str(), "train" | "train_supervised") {
            if let Some((_, Val::Const(m))) = args.iter().find(|(n, _)| n == "model") {
                self.model_of_node.insert(id.clone(), m.clone());
            }
        }
        let node = HNode {
            id: id.clone(),
            binding: self.cur_binding.clone().filter(|b| !b.contains('/')),
            kind: NodeKind::Op,
            op: decl.qualified(),
            op_version: decl.version,
            args,
            ty: String::new(),
            device: decl.device.clone(),
            memory: decl.memory,
            gpu: decl.gpu,
            cpu: decl.cpu,
            span,
        };
        self.push_node(node, ret.clone());
        Typed {
            ty: ret,
            val: Val::Node(id),
            origin: span,
        }
    }

    /// A user composition: its body evaluated with the arguments bound to its parameters.
    fn expand(&mut self, decl: &Decl, bound: Vec<Bound>, ret: Ty, span: Span) -> Typed {
        // Recursive compositions were reported once, with their cycle, when the file was
        // resolved. While a composition is checked on its own, the compositions it calls
        // are not expanded again (each is checked on its own too): that keeps chains of
        // compositions linear.
        let opaque = Typed {
            ty: if decl.ret.is_some() {
                ret.clone()
            } else {
                Ty::Unknown
            },
            val: Val::Unknown,
            origin: span,
        };
        if self.recursive_fns.contains(&decl.name)
            || (self.standalone && !self.comp_stack.is_empty())
        {
            return opaque;
        }
        if self.comp_stack.len() >= MAX_COMPOSITION_DEPTH {
            self.diags.push(
                Diagnostic::error(
                    "E0108",
                    format!("compositions nest more than {MAX_COMPOSITION_DEPTH} calls deep"),
                )
                .at(span, "too deep")
                .help("flatten the chain of `fn` calls"),
            );
            return Typed::unknown(span);
        }
        if self.comp_stack.contains(&decl.name) {
            let chain = format!("{} -> {}", self.comp_stack.join(" -> "), decl.name);
            self.diags.push(
                Diagnostic::error("E0108", format!("`{}` calls itself ({chain})", decl.name))
                    .at(span, "recursive call")
                    .help("compositions are expanded at compile time and cannot recurse"),
            );
            return Typed::unknown(span);
        }
        let Some(body) = decl.body.clone() else {
            return Typed::unknown(span);
        };
        let mut scope = Scope::default();
        for (p, b) in decl.params.iter().zip(bound) {
            scope.vars.insert(p.name.name.clone(), b.t);
        }
        self.comp_stack.push(decl.name.clone());
        let saved_top = self.top_span.take();
        let lets: Vec<&ast::Let> = body.lets.iter().collect();
        let saved_binding = self.cur_binding.clone();
        self.eval_lets(&lets, &mut scope);
        self.cur_binding = saved_binding;
        let r = self.expr(&body.result, &mut scope);
        self.top_span = saved_top;
        self.comp_stack.pop();
        if decl.ret.is_some() {
            self.expect(
                &ret,
                &r,
                body.result.span,
                &format!("the result of `{}`", decl.name),
            );
        }
        Typed {
            ty: if decl.ret.is_some() { ret } else { r.ty },
            val: r.val,
            origin: span,
        }
    }
}

fn is_int_type(t: &ast::TypeExpr) -> bool {
    matches!(t, ast::TypeExpr::Named { name, dims: None, schema: None, .. } if name.name == "Int")
}

/// The outermost constructor of a type, for method lookup.
#[derive(Debug, PartialEq)]
pub(crate) enum Head {
    Named(String),
    Table,
    Record,
    Other,
}

pub(crate) fn head_of(t: &Ty) -> Head {
    match t {
        Ty::Domain(n, _) | Ty::Arrow(n, _, _) | Ty::Named(n) => Head::Named(n.clone()),
        Ty::Table(_) => Head::Table,
        Ty::Record(_) => Head::Record,
        _ => Head::Other,
    }
}

fn self_head_matches(decl: &Decl, head: &Head) -> bool {
    let Some(p) = decl.params.first() else {
        return false;
    };
    match &p.ty {
        ast::TypeExpr::Named { name, .. } => {
            if decl.generics.contains(&name.name) {
                return true;
            }
            match head {
                Head::Named(n) => *n == name.name,
                Head::Table => name.name == "Table",
                _ => false,
            }
        }
        ast::TypeExpr::Record { .. } => *head == Head::Record,
        ast::TypeExpr::List { .. } => false,
    }
}

fn fold(op: BinOp, a: &Value, b: &Value, ty: &Ty) -> Result<Value, String> {
    let q = |v: &Value| v.get("value").and_then(|x| x.as_f64());
    let num = |v: &Value| v.as_f64().or_else(|| q(v));
    if let (Ty::Int, Some(x), Some(y)) = (ty, a.as_i64(), b.as_i64()) {
        let r = match op {
            BinOp::Add => x.checked_add(y),
            BinOp::Sub => x.checked_sub(y),
            BinOp::Mul => x.checked_mul(y),
            BinOp::Div => {
                if y == 0 {
                    return Err("division by zero".into());
                }
                x.checked_div(y)
            }
            _ => None,
        };
        return r
            .map(|v| json!(v))
            .ok_or_else(|| "integer overflow".to_string());
    }
    match ty {
        Ty::Bool => {
            let r = match op {
                BinOp::And => a.as_bool().unwrap_or(false) && b.as_bool().unwrap_or(false),
                BinOp::Or => a.as_bool().unwrap_or(false) || b.as_bool().unwrap_or(false),
                BinOp::Eq => a == b || (num(a).is_some() && num(a) == num(b)),
                BinOp::Ne => !(a == b || (num(a).is_some() && num(a) == num(b))),
                _ => {
                    let (x, y) = match (num(a), num(b)) {
                        (Some(x), Some(y)) => (x, y),
                        _ => {
                            let (x, y) = (a.as_str().unwrap_or(""), b.as_str().unwrap_or(""));
                            return Ok(json!(match op {
                                BinOp::Lt => x < y,
                                BinOp::Le => x <= y,
                                BinOp::Gt => x > y,
                                _ => x >= y,
                            }));
                        }
                    };
                    match op {
                        BinOp::Lt => x < y,
                        BinOp::Le => x <= y,
                        BinOp::Gt => x > y,
                        _ => x >= y,
                    }
                }
            };
            Ok(json!(r))
        }
        Ty::Str => Ok(json!(format!(
            "{}{}",
            a.as_str().unwrap_or(""),
            b.as_str().unwrap_or("")
        ))),
        Ty::Float => {
            let r = float_op(op, num(a).unwrap_or(0.0), num(b).unwrap_or(0.0))?;
            Ok(json!(r))
        }
        Ty::Quantity(k) => {
            let base = if a.get("quantity").is_some() { a } else { b };
            let r = float_op(op, num(a).unwrap_or(0.0), num(b).unwrap_or(0.0))?;
            let unit = base.get("unit").cloned().unwrap_or(Value::Null);
            let text = format!("{r} {}", unit.as_str().unwrap_or(""));
            Ok(json!({"quantity": k.plan_name(), "value": r, "unit": unit, "text": text}))
        }
        _ => Err("cannot compute this at compile time".into()),
    }
}

fn contains(outer: Span, inner: Span) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// Arithmetic on constant floats (and quantities' values), refusing division by zero and
/// results that are not finite.
fn float_op(op: BinOp, x: f64, y: f64) -> Result<f64, String> {
    let r = match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        _ => {
            if y == 0.0 {
                return Err("division by zero".into());
            }
            x / y
        }
    };
    if r.is_finite() {
        Ok(r)
    } else {
        Err("the result is too large for a 64-bit float".into())
    }
}
