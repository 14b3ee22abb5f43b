//! The checker: resolves names, infers and checks types, and evaluates each pipeline into
//! typed nodes (hir.rs). Evaluation and checking are one pass: constants (parameters, layer
//! configs, sizes) are known while checking, which is what lets dimensions depend on values
//! (`hashing(dim: 384)` is an `Embedder[384]`, `patches(size: 100)` a `Tensor[1, 100, 100]`).

use crate::hir::*;
use crate::prelude::{prelude, Decl, Prelude};
use crate::types::*;
use crate::unify::{Mismatch, Subst};
use mlp_diagnostics::{did_you_mean, Diagnostic, Span};
use mlp_syntax::ast::{self, Expr, ExprKind, ItemKind, Stmt};
use mlp_syntax::Parsed;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// The result of checking one file.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    pub diagnostics: Vec<Diagnostic>,
    pub pipelines: Vec<CheckedPipeline>,
}

/// A value with its type and where it was made (for labels that point at a definition).
#[derive(Clone, Debug)]
pub(crate) struct Typed {
    pub ty: Ty,
    pub val: Val,
    pub origin: Span,
}

impl Typed {
    pub fn unknown(span: Span) -> Typed {
        Typed {
            ty: Ty::Unknown,
            val: Val::Unknown,
            origin: span,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Imported {
    Item(String, String),
    Module(String),
    /// A name whose import or declaration failed (already reported): uses of it are
    /// silently unknown, so one mistake gives one error.
    Poisoned,
}

/// Names visible in an expression: pipeline parameters and bindings, or a composition's
/// parameters and lets. `module` is set while evaluating a standard-library default, whose
/// names resolve in its own module.
#[derive(Default)]
pub(crate) struct Scope {
    pub vars: HashMap<String, Typed>,
    pub module: Option<String>,
}

pub(crate) struct Checker<'a> {
    pub prelude: &'static Prelude,
    pub path: &'a str,
    pub text: &'a str,
    pub imports: HashMap<String, Imported>,
    pub user_fns: HashMap<String, Decl>,
    pub diags: Vec<Diagnostic>,
    pub sub: Subst,
    // Per pipeline:
    pub pipeline: String,
    pub nodes: Vec<HNode>,
    pub node_tys: Vec<Ty>,
    pub node_index: HashMap<String, usize>,
    pub cur_binding: Option<String>,
    pub top_span: Option<Span>,
    pub comp_stack: Vec<String>,
    /// The model config (`{"fn": "nn.unet", ...}`) behind each trained-model node.
    pub model_of_node: HashMap<String, Value>,
    /// The checked column expressions of the `derive` call being evaluated.
    pub pending_columns: Option<Value>,
    /// Output paths of the current pipeline, to refuse writing one twice.
    pub output_paths: HashMap<String, Span>,
    /// Parameter defaults being evaluated, to catch a default that calls its own function.
    pub default_stack: Vec<String>,
    /// Next `#n` suffix per node id base (see `unique_id`).
    pub id_suffix: HashMap<String, usize>,
    /// User compositions that call themselves, directly or through others (reported once).
    pub recursive_fns: HashSet<String>,
    /// True while a composition is checked on its own (`check_fn_standalone`).
    pub standalone: bool,
}

impl<'a> Checker<'a> {
    /// A checker for one file, with empty per-file and per-pipeline state.
    pub(crate) fn new(path: &'a str, text: &'a str) -> Checker<'a> {
        Checker {
            prelude: prelude(),
            path,
            text,
            imports: HashMap::new(),
            user_fns: HashMap::new(),
            diags: Vec::new(),
            sub: Subst::default(),
            pipeline: String::new(),
            nodes: Vec::new(),
            node_tys: Vec::new(),
            node_index: HashMap::new(),
            cur_binding: None,
            top_span: None,
            comp_stack: Vec::new(),
            model_of_node: HashMap::new(),
            pending_columns: None,
            output_paths: HashMap::new(),
            default_stack: Vec::new(),
            id_suffix: HashMap::new(),
            recursive_fns: HashSet::new(),
            standalone: false,
        }
    }
}

/// Checks a parsed file. `overrides` are `--set name=value` pairs for pipeline parameters.
pub fn check(path: &str, text: &str, parsed: &Parsed, overrides: &[(String, String)]) -> Checked {
    let file = &parsed.file;
    let mut c = Checker::new(path, text);
    for name in &parsed.broken {
        c.imports.entry(name.clone()).or_insert(Imported::Poisoned);
    }
    c.resolve_items(file);
    c.find_recursive_fns(file);
    let mut pipelines = Vec::new();
    let mut used_overrides = HashSet::new();
    for item in &file.items {
        if let ItemKind::Pipeline(p) = &item.kind {
            pipelines.push(c.check_pipeline(item, p, overrides, &mut used_overrides));
        }
    }
    // Compositions that no pipeline calls are still checked, with unknown arguments.
    for item in &file.items {
        if let ItemKind::Fn(f) = &item.kind {
            if f.body.is_some() {
                c.check_fn_standalone(f);
            }
        }
    }
    for (k, _) in overrides {
        if !used_overrides.contains(k) {
            let names: Vec<String> = pipelines
                .iter()
                .flat_map(|p| p.params.iter().map(|q| q.name.clone()))
                .collect();
            let mut d = Diagnostic::error("E0211", format!("no pipeline has a parameter `{k}`"));
            if let Some(s) = did_you_mean(k, names.iter().map(|s| s.as_str())) {
                d = d.help(format!("did you mean `{s}`?"));
            }
            c.diags.push(d);
        }
    }
    let mut diags = std::mem::take(&mut c.diags);
    let mut seen = HashSet::new();
    diags.retain(|d| seen.insert((d.code.clone(), d.primary_span(), d.message.clone())));
    diags.sort_by_key(|d| d.primary_span().map(|s| s.start).unwrap_or(u32::MAX));
    Checked {
        diagnostics: diags,
        pipelines,
    }
}

impl<'a> Checker<'a> {
    // ------------------------------------------------------------------ items and imports

    fn resolve_items(&mut self, file: &ast::File) {
        let mut defined: HashMap<String, Span> = HashMap::new();
        let mut define = |c: &mut Checker, name: &ast::Ident| {
            if let Some(prev) = defined.get(&name.name) {
                c.diags.push(
                    Diagnostic::error(
                        "E0103",
                        format!("`{}` is defined more than once", name.name),
                    )
                    .at(name.span, "defined again here")
                    .also(*prev, "first defined here")
                    .help("rename one of them"),
                );
                false
            } else {
                defined.insert(name.name.clone(), name.span);
                true
            }
        };
        for item in &file.items {
            for a in &item.attrs {
                self.diags.push(
                    Diagnostic::error("E0107", format!("attribute `@{}` is not allowed here", a.name.name))
                        .at(a.span, "attributes describe ops of the standard library")
                        .help("remove it; `@version`, `@device` and `@resources` belong on `op` declarations in stdlib/"),
                );
            }
            match &item.kind {
                ItemKind::Import(imp) => self.resolve_import(imp, &mut define),
                ItemKind::Pipeline(p) => {
                    define(self, &p.name);
                }
                ItemKind::Fn(f) => {
                    if f.body.is_none() {
                        self.diags.push(
                            Diagnostic::error("E0107", format!("`fn {}` has no body", f.name.name))
                                .at(f.name.span, "declared without a body")
                                .help("built-in functions without a body exist only in the standard library; give it a body: `fn name(..) -> T { expr }`"),
                        );
                        continue;
                    }
                    if define(self, &f.name) {
                        let mut sink = Vec::new();
                        if let Some(d) = crate::prelude::decl_of("", self.path, item, &mut sink) {
                            self.user_fns.insert(f.name.name.clone(), d);
                        }
                    }
                }
                ItemKind::Op(o) => {
                    self.diags.push(
                        Diagnostic::error("E0107", format!("`op {}` declared outside the standard library", o.name.name))
                            .at(o.name.span, "ops are implemented by the runtime")
                            .help("compose existing ops in a `fn` with a body, or add the op to the runtime and to stdlib/"),
                    );
                }
            }
        }
    }

    fn resolve_import(
        &mut self,
        imp: &ast::Import,
        define: &mut impl FnMut(&mut Checker, &ast::Ident) -> bool,
    ) {
        let modules: Vec<&str> = self.prelude.modules.keys().map(|s| s.as_str()).collect();
        let path: Vec<&str> = imp.path.iter().map(|i| i.name.as_str()).collect();
        let full_span = imp
            .path
            .first()
            .map(|f| f.span.to(imp.path.last().unwrap().span))
            .unwrap_or_default();
        let unknown_module = |c: &mut Checker, name: &str, span: Span| {
            let mut d = Diagnostic::error("E0101", format!("unknown module `{name}`"))
                .at(span, "no such module");
            d = match did_you_mean(name, modules.iter().copied()) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!("the standard library has: {}", modules.join(", "))),
            };
            c.diags.push(d);
        };
        let joined = path.join(".");
        // Whatever this import fails to bring in is poisoned, not unknown.
        let poison = |c: &mut Checker| {
            let names: Vec<&ast::Ident> = match &imp.names {
                Some(ns) => ns
                    .iter()
                    .map(|n| n.alias.as_ref().unwrap_or(&n.name))
                    .collect(),
                None => imp.alias.iter().chain(imp.path.last()).take(1).collect(),
            };
            for n in names {
                c.imports
                    .entry(n.name.clone())
                    .or_insert(Imported::Poisoned);
            }
        };
        if let Some(names) = &imp.names {
            if !self.prelude.modules.contains_key(&joined) {
                unknown_module(self, &joined, full_span);
                poison(self);
                return;
            }
            for n in names {
                self.import_item(
                    &joined,
                    &n.name,
                    n.alias.as_ref().unwrap_or(&n.name),
                    define,
                );
            }
            return;
        }
        if self.prelude.modules.contains_key(&joined) {
            let alias = imp
                .alias
                .as_ref()
                .unwrap_or_else(|| imp.path.last().unwrap());
            if define(self, alias) {
                self.imports
                    .insert(alias.name.clone(), Imported::Module(joined));
            }
            return;
        }
        if path.len() >= 2 {
            let module = path[..path.len() - 1].join(".");
            if self.prelude.modules.contains_key(&module) {
                let name = imp.path.last().unwrap();
                self.import_item(&module, name, imp.alias.as_ref().unwrap_or(name), define);
                return;
            }
            let first = &imp.path[0];
            unknown_module(self, &module, first.span.to(imp.path[path.len() - 2].span));
            poison(self);
            return;
        }
        unknown_module(self, &joined, full_span);
        poison(self);
    }

    fn import_item(
        &mut self,
        module: &str,
        name: &ast::Ident,
        alias: &ast::Ident,
        define: &mut impl FnMut(&mut Checker, &ast::Ident) -> bool,
    ) {
        let m = &self.prelude.modules[module];
        if !m.items.contains_key(&name.name) {
            let mut d =
                Diagnostic::error("E0102", format!("module `{module}` has no `{}`", name.name))
                    .at(name.span, "not in this module");
            if let Some(s) = did_you_mean(&name.name, m.items.keys().map(|s| s.as_str())) {
                d = d.help(format!("did you mean `{s}`?"));
            } else if let Some((other, _)) = self
                .prelude
                .modules
                .iter()
                .find(|(_, om)| om.items.contains_key(&name.name))
            {
                d = d.help(format!(
                    "`{}` is in module `{other}`: `import {other}.{{{}}}`",
                    name.name, name.name
                ));
            }
            self.diags.push(d);
            self.imports
                .entry(alias.name.clone())
                .or_insert(Imported::Poisoned);
            return;
        }
        if define(self, alias) {
            self.imports.insert(
                alias.name.clone(),
                Imported::Item(module.to_string(), name.name.clone()),
            );
        }
    }

    /// A callable by plain name: user compositions, imports, then `core`.
    pub fn lookup_callable(&self, name: &str, scope: &Scope) -> Option<Decl> {
        if let Some(m) = &scope.module {
            if let Some(d) = self.prelude.decl(m, name) {
                return Some(d.clone());
            }
            return self.prelude.decl("core", name).cloned();
        }
        if let Some(d) = self.user_fns.get(name) {
            return Some(d.clone());
        }
        if let Some(Imported::Item(m, n)) = self.imports.get(name) {
            return self.prelude.decl(m, n).cloned();
        }
        self.prelude.decl("core", name).cloned()
    }

    /// Every name an expression could mean, for "did you mean" help.
    pub fn visible_names(&self, scope: &Scope) -> Vec<String> {
        let mut v: Vec<String> = scope.vars.keys().cloned().collect();
        v.extend(self.user_fns.keys().cloned());
        v.extend(self.imports.keys().cloned());
        if let Some(core) = self.prelude.modules.get("core") {
            v.extend(core.items.keys().cloned());
        }
        v.sort();
        v
    }

    /// Where a name is declared in the standard library, for help when it is not imported.
    pub fn stdlib_home(&self, name: &str) -> Option<String> {
        self.prelude
            .modules
            .iter()
            .find(|(_, m)| m.items.contains_key(name))
            .map(|(k, _)| k.clone())
    }

    // ------------------------------------------------------------------ pipelines

    fn check_pipeline(
        &mut self,
        item: &ast::Item,
        p: &ast::Pipeline,
        overrides: &[(String, String)],
        used: &mut HashSet<String>,
    ) -> CheckedPipeline {
        self.pipeline = p.name.name.clone();
        self.output_paths.clear();
        self.id_suffix.clear();
        self.nodes.clear();
        self.node_tys.clear();
        self.node_index.clear();
        let mut scope = Scope::default();
        let mut params = Vec::new();
        let dups = self.duplicate_params(&p.params);
        for (k, param) in p.params.iter().enumerate() {
            if dups.contains(&k) {
                continue;
            }
            let ty = self.ty_of(&param.ty, &mut Inst::default(), None);
            let over = overrides.iter().find(|(k, _)| *k == param.name.name);
            let (value, overridden) = if let Some((k, text)) = over {
                used.insert(k.clone());
                let v = self.override_value(text, &ty, param);
                (v, true)
            } else if let Some(d) = &param.default {
                let v = self.expr(d, &mut Scope::default());
                let fits = self.expect_coerce(&ty, &v, d.span, "the parameter's default");
                if fits && !v.val.is_const() && !matches!(v.val, Val::Unknown) {
                    self.diags.push(
                        Diagnostic::error("E0212", "a parameter default must be a constant")
                            .at(d.span, "computed at run time"),
                    );
                }
                (v, false)
            } else {
                (Typed::unknown(param.span), false)
            };
            let value_json = value.val.as_const().cloned();
            params.push(CheckedParam {
                name: param.name.name.clone(),
                ty: self.sub.show(&ty),
                value: value_json,
                overridden,
                span: param.span,
            });
            scope.vars.insert(
                param.name.name.clone(),
                Typed {
                    ty,
                    val: value.val,
                    origin: param.span,
                },
            );
        }
        let lets: Vec<&ast::Let> = p
            .stmts
            .iter()
            .filter_map(|s| if let Stmt::Let(l) = s { Some(l) } else { None })
            .collect();
        self.eval_lets(&lets, &mut scope);
        let mut schedule = None;
        let mut outputs = 0usize;
        for s in &p.stmts {
            self.cur_binding = None;
            self.top_span = None;
            match s {
                Stmt::Let(_) => {}
                Stmt::Output {
                    value,
                    target,
                    span,
                } => {
                    outputs += 1;
                    self.output_stmt(value, target, *span, outputs, &mut scope);
                }
                Stmt::Deploy { value, .. } => {
                    self.cur_binding = Some("deploy".into());
                    self.top_span = Some(value.span);
                    let v = self.expr(value, &mut scope);
                    match (&v.val, self.sub.shallow(&v.ty)) {
                        (Val::Node(id), Ty::Named(n)) if n == "Endpoint" => {
                            if let Some(&i) = self.node_index.get(id) {
                                self.nodes[i].kind = NodeKind::Deploy;
                            }
                        }
                        (_, Ty::Unknown) => {}
                        (_, t) => {
                            let shown = self.sub.show(&t);
                            self.diags.push(
                                Diagnostic::error("E0201", format!("`deploy` expects an `Endpoint`, found `{shown}`"))
                                    .at(value.span, format!("found `{shown}`"))
                                    .help("deploy a model with `endpoint(model, auth: bearer(secret(\"TOKEN\")))`"),
                            );
                        }
                    }
                }
                Stmt::Schedule { value, span } => {
                    let v = self.expr(value, &mut scope);
                    match (&v.val, self.sub.shallow(&v.ty)) {
                        (Val::Const(c), Ty::Named(n)) if n == "Schedule" => {
                            if schedule.is_some() {
                                self.diags.push(
                                    Diagnostic::error("E0103", "the pipeline already has a schedule")
                                        .at(*span, "second schedule")
                                        .help("a pipeline has one schedule; combine them into one `cron(..)` expression"),
                                );
                            }
                            schedule = Some(c.clone());
                        }
                        (_, Ty::Unknown) => {}
                        (_, t) => {
                            let shown = self.sub.show(&t);
                            self.diags.push(
                                Diagnostic::error(
                                    "E0201",
                                    format!("`schedule` expects a `Schedule`, found `{shown}`"),
                                )
                                .at(value.span, format!("found `{shown}`"))
                                .help(
                                    "write `schedule every(1 d)` or `schedule cron(\"0 6 * * *\")`",
                                ),
                            );
                        }
                    }
                }
            }
        }
        let nodes = self.finish_nodes();
        CheckedPipeline {
            name: p.name.name.clone(),
            doc: item.doc.clone(),
            params,
            nodes,
            schedule,
            span: item.span,
        }
    }

    /// Renders node types now that every variable that will be bound is bound.
    fn finish_nodes(&mut self) -> Vec<HNode> {
        let mut nodes = std::mem::take(&mut self.nodes);
        for (n, t) in nodes.iter_mut().zip(self.node_tys.iter()) {
            n.ty = self.sub.show(t);
        }
        self.node_tys.clear();
        self.node_index.clear();
        nodes
    }

    fn output_stmt(
        &mut self,
        value: &Expr,
        target: &Expr,
        span: Span,
        n: usize,
        scope: &mut Scope,
    ) {
        let label = match &value.kind {
            ExprKind::Ident(name) => name.clone(),
            _ => n.to_string(),
        };
        self.cur_binding = Some(format!("output/{label}"));
        let v = self.expr(value, scope);
        let t = self.expr(target, scope);
        if v.ty.contains_secret() || matches!(self.sub.shallow(&v.ty), Ty::Secret) {
            self.diags.push(
                Diagnostic::error("E0206", "a secret cannot be written to an output")
                    .at(value.span, "this value holds a secret")
                    .help("secrets are passed by name to the parameters that need them; they are never written, logged or hashed"),
            );
            return;
        }
        let path = match (&t.val, self.sub.shallow(&t.ty)) {
            (Val::Const(Value::String(s)), Ty::Str | Ty::Path) => s.clone(),
            (_, Ty::Unknown) => return,
            (Val::Const(_), ty) => {
                let shown = self.sub.show(&ty);
                self.diags.push(
                    Diagnostic::error(
                        "E0201",
                        format!("an output target must be a path, found `{shown}`"),
                    )
                    .at(target.span, "not a path")
                    .help("write `output value -> \"out/file.ext\"`"),
                );
                return;
            }
            _ => {
                self.diags.push(
                    Diagnostic::error(
                        "E0212",
                        "an output target must be known before the pipeline runs",
                    )
                    .at(target.span, "computed at run time"),
                );
                return;
            }
        };
        if path.is_empty() {
            self.diags.push(
                Diagnostic::error("E0210", "an output path cannot be empty")
                    .at(target.span, "empty path"),
            );
            return;
        }
        if let Some(prev) = self.output_paths.get(&path) {
            self.diags.push(
                Diagnostic::error("E0213", format!("two outputs write `{path}`"))
                    .at(target.span, "written again here")
                    .also(*prev, "first written here")
                    .help("give each output its own path"),
            );
            return;
        }
        self.output_paths.insert(path.clone(), target.span);
        let vt = self.sub.resolve(&v.ty);
        if vt.is_config() || matches!(v.val, Val::Const(_)) && !matches!(vt, Ty::Unknown) {
            let shown = self.sub.show(&vt);
            self.diags.push(
                Diagnostic::error(
                    "E0213",
                    format!("`{shown}` is configuration, not a result; it cannot be written"),
                )
                .at(value.span, "known before the pipeline runs")
                .help("output the results of ops (a trained model, an index, a table, metrics)"),
            );
            return;
        }
        if let Some(allowed) = output_formats(&vt) {
            let ext = path
                .rsplit_once('.')
                .map(|(_, e)| e.to_ascii_lowercase())
                .filter(|e| !e.contains('/'))
                .unwrap_or_default();
            if !allowed.contains(&ext.as_str()) {
                let shown = self.sub.show(&vt);
                let list: Vec<String> = allowed.iter().map(|e| format!(".{e}")).collect();
                self.diags.push(
                    Diagnostic::error(
                        "E0213",
                        format!(
                            "`{shown}` cannot be written as `{}`",
                            if ext.is_empty() {
                                "a file without extension".to_string()
                            } else {
                                format!(".{ext}")
                            }
                        ),
                    )
                    .at(target.span, "the extension chooses the format")
                    .also(value.span, format!("found `{shown}`"))
                    .help(format!("write it as {}", list.join(", "))),
                );
                return;
            }
        }
        let id = self.unique_id(format!("{}.output/{label}", self.pipeline));
        self.push_node(
            HNode {
                id,
                binding: None,
                kind: NodeKind::Output,
                op: "io.output".into(),
                op_version: 1,
                args: vec![
                    ("value".into(), v.val),
                    ("path".into(), Val::Const(Value::String(path))),
                ],
                ty: String::new(),
                device: crate::prelude::Device::Cpu,
                memory: None,
                gpu: 0,
                cpu: None,
                span,
            },
            v.ty,
        );
    }

    /// `base`, or `base#2`, `base#3`, ... when taken. The next suffix to try is remembered
    /// per base, so a binding with thousands of anonymous nodes stays linear.
    pub fn unique_id(&mut self, base: String) -> String {
        if !self.node_index.contains_key(&base) {
            return base;
        }
        let next = self.id_suffix.entry(base.clone()).or_insert(2);
        loop {
            let id = format!("{base}#{next}");
            *next += 1;
            if !self.node_index.contains_key(&id) {
                return id;
            }
        }
    }

    pub fn push_node(&mut self, node: HNode, ty: Ty) {
        self.node_index.insert(node.id.clone(), self.nodes.len());
        self.nodes.push(node);
        self.node_tys.push(ty);
    }

    /// Evaluates `let` bindings in dependency order; reports duplicates and cycles.
    pub fn eval_lets(&mut self, lets: &[&ast::Let], scope: &mut Scope) {
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut live = vec![true; lets.len()];
        for (i, l) in lets.iter().enumerate() {
            if let Some(&j) = index.get(l.name.name.as_str()) {
                self.diags.push(
                    Diagnostic::error(
                        "E0104",
                        format!("`{}` is bound more than once", l.name.name),
                    )
                    .at(l.name.span, "bound again here")
                    .also(lets[j].name.span, "first bound here")
                    .help("bindings are immutable: give the second one another name"),
                );
                live[i] = false;
                continue;
            }
            if let Some(p) = scope.vars.get(&l.name.name) {
                self.diags.push(
                    Diagnostic::error("E0104", format!("`{}` is already a parameter", l.name.name))
                        .at(l.name.span, "bound here")
                        .also(p.origin, "the parameter")
                        .help("give the binding another name"),
                );
                live[i] = false;
                continue;
            }
            index.insert(&l.name.name, i);
        }
        let deps: Vec<Vec<usize>> = lets
            .iter()
            .map(|l| {
                let mut names = Vec::new();
                free_names(&l.value, &mut names);
                let mut d: Vec<usize> = names
                    .iter()
                    .filter_map(|n| index.get(n.as_str()).copied())
                    .collect();
                d.sort();
                d.dedup();
                d
            })
            .collect();
        let (order, cycles) = topo_order(&deps, &live);
        let mut in_cycle = vec![false; lets.len()];
        for cycle in cycles {
            let names: Vec<&str> = cycle.iter().map(|&i| lets[i].name.name.as_str()).collect();
            let first = cycle[0];
            let mut d = Diagnostic::error(
                "E0106",
                format!(
                    "bindings depend on each other in a cycle: {} -> {}",
                    names.join(" -> "),
                    names[0]
                ),
            )
            .at(
                lets[first].name.span,
                format!(
                    "`{}` needs `{}`",
                    names[0],
                    names.get(1).unwrap_or(&names[0])
                ),
            );
            for (k, &i) in cycle.iter().enumerate().skip(1) {
                let next = names[(k + 1) % names.len()];
                d = d.also(lets[i].name.span, format!("`{}` needs `{next}`", names[k]));
            }
            self.diags.push(d.help(
                "a pipeline is a DAG: break the cycle by computing one of these from other inputs",
            ));
            for i in cycle {
                in_cycle[i] = true;
            }
        }
        for i in order {
            let l = lets[i];
            if in_cycle[i] {
                scope
                    .vars
                    .insert(l.name.name.clone(), Typed::unknown(l.name.span));
                continue;
            }
            self.cur_binding = Some(l.name.name.clone());
            self.top_span = Some(l.value.span);
            let mut v = self.expr(&l.value, scope);
            if let Some(annot) = &l.ty {
                let at = self.ty_of(annot, &mut Inst::default(), None);
                if self.expect_coerce(&at, &v, l.value.span, "the annotation") {
                    if let Val::Node(id) = &v.val {
                        if let Some(&k) = self.node_index.get(id) {
                            if matches!(at, Ty::Table(Some(_))) {
                                self.node_tys[k] = at.clone();
                            }
                        }
                    }
                    v.ty = at;
                }
            }
            v.origin = l.name.span;
            scope.vars.insert(l.name.name.clone(), v);
        }
        self.cur_binding = None;
        self.top_span = None;
    }

    /// Reports parameters declared twice; returns the indices of the repeats.
    fn duplicate_params(&mut self, params: &[ast::Param]) -> Vec<usize> {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut dups = Vec::new();
        for (k, p) in params.iter().enumerate() {
            if let Some(prev) = seen.insert(&p.name.name, p.name.span) {
                self.diags.push(
                    Diagnostic::error(
                        "E0103",
                        format!("parameter `{}` is declared twice", p.name.name),
                    )
                    .at(p.name.span, "declared again here")
                    .also(prev, "first declared here"),
                );
                dups.push(k);
            }
        }
        dups
    }

    /// Reports each cycle of compositions calling each other once, and remembers its members.
    fn find_recursive_fns(&mut self, file: &ast::File) {
        let fns: Vec<&ast::FnDecl> = file
            .items
            .iter()
            .filter_map(|i| match &i.kind {
                ItemKind::Fn(f) if f.body.is_some() && self.user_fns.contains_key(&f.name.name) => {
                    Some(f)
                }
                _ => None,
            })
            .collect();
        let index: HashMap<&str, usize> = fns
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.name.as_str(), i))
            .collect();
        let deps: Vec<Vec<usize>> = fns
            .iter()
            .map(|f| {
                let mut names = Vec::new();
                let body = f.body.as_ref().unwrap();
                for l in &body.lets {
                    free_names(&l.value, &mut names);
                }
                free_names(&body.result, &mut names);
                let mut d: Vec<usize> = names
                    .iter()
                    .filter_map(|n| index.get(n.as_str()).copied())
                    .collect();
                d.sort();
                d.dedup();
                d
            })
            .collect();
        let (_, cycles) = topo_order(&deps, &vec![true; fns.len()]);
        for cycle in cycles {
            let names: Vec<&str> = cycle.iter().map(|&i| fns[i].name.name.as_str()).collect();
            let first = fns[cycle[0]];
            let msg = if names.len() == 1 {
                format!("`{}` calls itself", names[0])
            } else {
                format!(
                    "compositions call each other in a cycle: {} -> {}",
                    names.join(" -> "),
                    names[0]
                )
            };
            let mut d = Diagnostic::error("E0108", msg).at(first.name.span, "recursive");
            for &i in cycle.iter().skip(1) {
                d = d.also(fns[i].name.span, "part of the cycle");
            }
            self.diags
                .push(d.help("compositions are expanded at compile time and cannot recurse"));
            for i in cycle {
                self.recursive_fns.insert(fns[i].name.name.clone());
            }
        }
    }

    fn check_fn_standalone(&mut self, f: &ast::FnDecl) {
        let saved = std::mem::take(&mut self.nodes);
        let saved_tys = std::mem::take(&mut self.node_tys);
        let saved_idx = std::mem::take(&mut self.node_index);
        let saved_p = std::mem::replace(&mut self.pipeline, format!("fn:{}", f.name.name));
        self.standalone = true;
        let mut scope = Scope::default();
        let mut inst = Inst::default();
        for g in &f.generics {
            let v = self.sub.fresh_ty(&g.name);
            inst.generics.insert(g.name.clone(), v);
        }
        self.duplicate_params(&f.params);
        for p in &f.params {
            let ty = self.ty_of(&p.ty, &mut inst, None);
            if let Some(d) = &p.default {
                let key = format!("{}({})", f.name.name, p.name.name);
                self.default_stack.push(key);
                let v = self.expr(d, &mut Scope::default());
                self.default_stack.pop();
                self.expect_coerce(&ty, &v, d.span, "the parameter's default");
            }
            scope.vars.insert(
                p.name.name.clone(),
                Typed {
                    ty,
                    val: Val::Unknown,
                    origin: p.span,
                },
            );
        }
        if let Some(body) = &f.body {
            self.comp_stack.push(f.name.name.clone());
            let lets: Vec<&ast::Let> = body.lets.iter().collect();
            self.eval_lets(&lets, &mut scope);
            let r = self.expr(&body.result, &mut scope);
            if let Some(ret) = &f.ret {
                let rt = self.ty_of(ret, &mut inst, None);
                self.expect(&rt, &r, body.result.span, "the declared result type");
            }
            self.comp_stack.pop();
        }
        self.nodes = saved;
        self.node_tys = saved_tys;
        self.node_index = saved_idx;
        self.pipeline = saved_p;
        self.standalone = false;
    }

    /// Parses a `--set name=value` override as a literal of the parameter's type.
    fn override_value(&mut self, text: &str, ty: &Ty, param: &ast::Param) -> Typed {
        let src = format!("pipeline __override() {{ let v = {text} }}");
        let parsed = mlp_syntax::parse(&src);
        let expr = parsed.file.items.first().and_then(|i| match &i.kind {
            ItemKind::Pipeline(p) => p.stmts.first().and_then(|s| match s {
                Stmt::Let(l) if parsed.diagnostics.is_empty() => Some(l.value.clone()),
                _ => None,
            }),
            _ => None,
        });
        let literal = expr.filter(|e| {
            matches!(
                e.kind,
                ExprKind::Int { .. }
                    | ExprKind::Float { .. }
                    | ExprKind::Quantity { .. }
                    | ExprKind::Str(_)
                    | ExprKind::Bool(_)
            )
        });
        let v = match literal {
            Some(e) => {
                let mut t = self.expr(&e, &mut Scope::default());
                t.origin = param.span;
                t
            }
            // Anything else is taken as a string, so `--set survey=data/f3.sgy` works unquoted.
            None => Typed {
                ty: Ty::Str,
                val: Val::Const(Value::String(text.to_string())),
                origin: param.span,
            },
        };
        if matches!(self.sub.shallow(ty), Ty::Date) && matches!(v.ty, Ty::Str) {
            if !v.val.as_str().is_some_and(valid_date) {
                self.diags.push(
                    Diagnostic::error(
                        "E0211",
                        format!("`--set {}={text}`: not a date", param.name.name),
                    )
                    .at(param.name.span, "the parameter's type is `Date`")
                    .help("write dates as YYYY-MM-DD"),
                );
                return Typed::unknown(param.span);
            }
        } else if self.sub.unify(ty, &v.ty, param.span).is_err() {
            let want = self.sub.show(ty);
            self.diags.push(
                Diagnostic::error(
                    "E0211",
                    format!("`--set {}={text}`: expected `{want}`", param.name.name),
                )
                .at(param.name.span, format!("the parameter's type is `{want}`"))
                .help(format!("give a value of type `{want}`")),
            );
            return Typed::unknown(param.span);
        }
        v
    }

    // ------------------------------------------------------------------ type expressions

    /// Converts a type expression to a type. `decl_file` is set for standard-library
    /// signatures (their unknown names are standard-library bugs, reported against that file).
    pub fn ty_of(&mut self, t: &ast::TypeExpr, inst: &mut Inst, decl_file: Option<&str>) -> Ty {
        match t {
            ast::TypeExpr::List { elem, .. } => {
                Ty::List(Box::new(self.ty_of(elem, inst, decl_file)))
            }
            ast::TypeExpr::Record { fields, .. } => Ty::Record(
                fields
                    .iter()
                    .map(|f| (f.name.name.clone(), self.ty_of(&f.ty, inst, decl_file)))
                    .collect(),
            ),
            ast::TypeExpr::Named {
                name,
                dims,
                schema,
                span,
            } => {
                let n = name.name.as_str();
                let takes_args =
                    n == "Table" || domain_arity(n).is_some() || ARROW_TYPES.contains(&n);
                let known = inst.generics.contains_key(n)
                    || QKind::from_name(n).is_some()
                    || PRIMITIVES.contains(&n)
                    || CONFIG_TYPES.contains(&n)
                    || RUNTIME_TYPES.contains(&n)
                    || n == "Columns";
                if known && !takes_args && (dims.is_some() || schema.is_some()) {
                    self.report_ty(*span, decl_file, format!("`{n}` takes no type arguments"));
                    return Ty::Unknown;
                }
                if let Some(v) = inst.generics.get(n) {
                    return v.clone();
                }
                if let Some(q) = QKind::from_name(n) {
                    return Ty::Quantity(q);
                }
                let prim = match n {
                    "Int" => Some(Ty::Int),
                    "Float" => Some(Ty::Float),
                    "Bool" => Some(Ty::Bool),
                    "Str" => Some(Ty::Str),
                    "Path" => Some(Ty::Path),
                    "Date" => Some(Ty::Date),
                    "Secret" => Some(Ty::Secret),
                    _ => None,
                };
                if let Some(p) = prim {
                    return p;
                }
                if n == "Table" {
                    return match schema {
                        Some(fs) if !fs.is_empty() => Ty::Table(Some(
                            fs.iter()
                                .map(|f| (f.name.name.clone(), self.ty_of(&f.ty, inst, decl_file)))
                                .collect(),
                        )),
                        _ => Ty::Table(None),
                    };
                }
                if let Some(arity) = domain_arity(n) {
                    let ds: Vec<Dim> = match dims {
                        Some(ds) => ds.iter().map(|d| self.dim_of(d, inst, decl_file)).collect(),
                        None => match arity {
                            Some(k) => (0..k).map(|_| self.sub.fresh_dim("?")).collect(),
                            None => vec![],
                        },
                    };
                    if let (Some(k), Some(_)) = (arity, dims) {
                        if ds.len() != k {
                            self.report_ty(
                                *span,
                                decl_file,
                                format!("`{n}` takes {k} dimension(s), found {}", ds.len()),
                            );
                            return Ty::Unknown;
                        }
                    }
                    return Ty::Domain(n.to_string(), ds);
                }
                if ARROW_TYPES.contains(&n) {
                    return match dims.as_deref() {
                        Some([ast::DimArg::Arrow(a, b, _)]) => {
                            let a = self.arg_ty(a, inst, decl_file);
                            let b = self.arg_ty(b, inst, decl_file);
                            Ty::Arrow(n.to_string(), Box::new(a), Box::new(b))
                        }
                        None => Ty::Arrow(
                            n.to_string(),
                            Box::new(self.sub.fresh_ty("A")),
                            Box::new(self.sub.fresh_ty("B")),
                        ),
                        Some(_) => {
                            self.report_ty(
                                *span,
                                decl_file,
                                format!("`{n}` is written `{n}[Input -> Output]`"),
                            );
                            Ty::Unknown
                        }
                    };
                }
                if n == "Columns" {
                    return Ty::Columns;
                }
                if CONFIG_TYPES.contains(&n) || RUNTIME_TYPES.contains(&n) {
                    return Ty::Named(n.to_string());
                }
                let known: Vec<&str> = PRIMITIVES
                    .iter()
                    .chain(CONFIG_TYPES)
                    .chain(RUNTIME_TYPES)
                    .chain(ARROW_TYPES)
                    .copied()
                    .chain([
                        "Volume",
                        "Traces",
                        "Tensor",
                        "Embeddings",
                        "Index",
                        "Embedder",
                        "Table",
                        "Duration",
                        "Bytes",
                        "TextSize",
                        "Rate",
                        "Percent",
                        "Frequency",
                        "Length",
                    ])
                    .collect();
                let mut d = Diagnostic::error("E0109", format!("unknown type `{n}`"));
                d = match decl_file {
                    Some(f) if f != self.path => d.also_in(f, name.span, "unknown type"),
                    _ => d.at(name.span, "no such type"),
                };
                if let Some(s) = did_you_mean(n, known.iter().copied()) {
                    d = d.help(format!("did you mean `{s}`?"));
                }
                self.diags.push(d);
                Ty::Unknown
            }
        }
    }

    fn report_ty(&mut self, span: Span, decl_file: Option<&str>, msg: String) {
        let d = Diagnostic::error("E0109", msg);
        self.diags.push(match decl_file {
            Some(f) if f != self.path => d.also_in(f, span, "in this signature"),
            _ => d.at(span, "here"),
        });
    }

    fn arg_ty(&mut self, d: &ast::DimArg, inst: &mut Inst, decl_file: Option<&str>) -> Ty {
        match d {
            ast::DimArg::Type(t) => self.ty_of(t, inst, decl_file),
            other => {
                self.report_ty(other.span(), decl_file, "expected a type here".into());
                Ty::Unknown
            }
        }
    }

    fn dim_of(&mut self, d: &ast::DimArg, inst: &mut Inst, decl_file: Option<&str>) -> Dim {
        match d {
            ast::DimArg::Int(v, _) => Dim::Const(*v),
            ast::DimArg::Hole(_) => Dim::Any,
            ast::DimArg::Type(ast::TypeExpr::Named {
                name,
                dims: None,
                schema: None,
                ..
            }) => {
                let n = &name.name;
                if let Some(v) = inst.int_params.get(n) {
                    if !inst.used_as_dim.contains(n) {
                        inst.used_as_dim.push(n.clone());
                    }
                    return match v {
                        Some(c) => Dim::Const(*c),
                        None => *inst
                            .dims
                            .entry(n.clone())
                            .or_insert_with(|| self.sub.fresh_dim(n)),
                    };
                }
                if let Some(d) = inst.dims.get(n) {
                    return *d;
                }
                let d = self.sub.fresh_dim(n);
                inst.dims.insert(n.clone(), d);
                d
            }
            other => {
                self.report_ty(
                    other.span(),
                    decl_file,
                    "a dimension is a number, a name or `_`".into(),
                );
                Dim::Any
            }
        }
    }

    // ------------------------------------------------------------------ expectations

    /// Checks that `v` fits `expected`; reports a precise diagnostic if not. Returns whether it fit.
    /// Like `expect`, and also accepts an ISO-8601 date string (`"2024-01-31"`) where a
    /// `Date` is expected, rejecting impossible dates.
    pub fn expect_coerce(&mut self, expected: &Ty, v: &Typed, at: Span, what: &str) -> bool {
        match self.date_literal(expected, v, at) {
            Some(ok) => ok,
            None => self.expect(expected, v, at, what),
        }
    }

    /// `Some(fits)` when `v` is a string constant offered as a `Date`.
    pub fn date_literal(&mut self, expected: &Ty, v: &Typed, at: Span) -> Option<bool> {
        if !matches!(self.sub.shallow(expected), Ty::Date)
            || !matches!(self.sub.shallow(&v.ty), Ty::Str)
        {
            return None;
        }
        let s = v.val.as_str()?;
        if valid_date(s) {
            return Some(true);
        }
        self.diags.push(
            Diagnostic::error("E0210", format!("`{s}` is not a date"))
                .at(at, "expected an ISO-8601 date")
                .help("write dates as \"YYYY-MM-DD\", e.g. \"2024-01-31\""),
        );
        Some(false)
    }

    pub fn expect(&mut self, expected: &Ty, v: &Typed, at: Span, what: &str) -> bool {
        match self.sub.unify(expected, &v.ty, at) {
            Ok(()) => true,
            Err(m) => {
                let d = self.mismatch(expected, &v.ty, m, at, what);
                self.diags.push(d);
                false
            }
        }
    }

    pub fn mismatch(
        &self,
        expected: &Ty,
        found: &Ty,
        m: Mismatch,
        at: Span,
        what: &str,
    ) -> Diagnostic {
        let e = self.sub.show(expected);
        let f = self.sub.show(found);
        match m {
            Mismatch::Secret => Diagnostic::error("E0206", format!("a secret cannot be used as `{e}`"))
                .at(at, format!("found `{f}`"))
                .help(format!(
                    "{what} expects `{e}`; secrets only go to parameters declared `Secret`, so they are never turned into text, logged or hashed"
                )),
            Mismatch::Quantity => {
                let fe = self.sub.resolve(expected);
                let ff = self.sub.resolve(found);
                let help = match (&fe, &ff) {
                    (Ty::Int | Ty::Float, Ty::Quantity(q)) => format!(
                        "{what} is a plain number (a count), not a `{}`; write the number without a unit",
                        q.name()
                    ),
                    (Ty::Quantity(q), Ty::Int | Ty::Float) => {
                        format!("{what} is a `{}`: give the unit, e.g. {}", q.name(), q.example())
                    }
                    (Ty::Quantity(a), Ty::Quantity(_)) => format!("{what} is a `{}`, e.g. {}", a.name(), a.example()),
                    _ => format!("{what} expects `{e}`"),
                };
                Diagnostic::error("E0202", format!("expected `{e}`, found `{f}`")).at(at, format!("found `{f}`")).help(help)
            }
            Mismatch::Dim { index, expected: de, found: df } => {
                let mut d = Diagnostic::error(
                    "E0204",
                    format!(
                        "dimension mismatch: expected `{e}`, found `{f}` (dimension {}: {} vs {})",
                        index + 1,
                        self.sub.show_dim(de),
                        self.sub.show_dim(df)
                    ),
                )
                .at(at, format!("found `{f}`"));
                // Follow the variable chain to the first place that fixed the expected size.
                let mut cur = de;
                while let Dim::Var(v) = cur {
                    if let Some(o) = self.sub.dim_origin.get(&v) {
                        if *o != at {
                            d = d.also(*o, format!("the size {} comes from here", self.sub.show_dim(de)));
                        }
                        break;
                    }
                    cur = self.sub.dim_bound(v);
                }
                d.help(format!("{what} needs matching sizes; both sides must agree on every dimension"))
            }
            Mismatch::Column(c) => Diagnostic::error("E0203", format!("the table has no column `{c}`"))
                .at(at, format!("found `{f}`"))
                .help(format!("{what} needs a table with a `{c}` column")),
            Mismatch::General => Diagnostic::error("E0201", format!("type mismatch: expected `{e}`, found `{f}`"))
                .at(at, format!("found `{f}`"))
                .help(format!("{what} expects `{e}`")),
        }
    }
}

/// The instantiation of one signature: generic parameters, symbolic dimensions, and the
/// values of `Int` parameters (a dimension named like an `Int` parameter takes its value).
#[derive(Default)]
pub struct Inst {
    pub generics: HashMap<String, Ty>,
    pub dims: HashMap<String, Dim>,
    pub int_params: HashMap<String, Option<i64>>,
    /// `Int` parameters whose values size a dimension (they must be positive).
    pub used_as_dim: Vec<String>,
}

/// Names an expression refers to, outside column blocks (whose names are columns).
pub fn free_names(e: &Expr, out: &mut Vec<String>) {
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match &e.kind {
            ExprKind::Ident(n) => out.push(n.clone()),
            ExprKind::List(xs) => stack.extend(xs.iter()),
            ExprKind::Record(fs) => stack.extend(fs.iter().map(|(_, e)| e)),
            ExprKind::Columns(_) => {}
            ExprKind::Call { callee, args } => {
                stack.push(callee);
                stack.extend(args.iter().map(|a| &a.value));
            }
            ExprKind::Member { base, .. } => stack.push(base),
            ExprKind::Binary { lhs, rhs, .. } => {
                stack.push(lhs);
                stack.push(rhs);
            }
            ExprKind::Unary { operand, .. } => stack.push(operand),
            ExprKind::Paren(x) => stack.push(x),
            _ => {}
        }
    }
}

/// Iterative depth-first topological order (dependencies first, ties in source order) and
/// the cycles found, each as a list of indices in dependency order.
pub fn topo_order(deps: &[Vec<usize>], live: &[bool]) -> (Vec<usize>, Vec<Vec<usize>>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let n = deps.len();
    let mut mark = vec![Mark::New; n];
    let mut order = Vec::with_capacity(n);
    let mut cycles = Vec::new();
    let mut in_cycle = vec![false; n];
    for root in 0..n {
        if mark[root] != Mark::New || !live[root] {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::Active;
        while let Some(&mut (v, ref mut k)) = stack.last_mut() {
            if *k < deps[v].len() {
                let w = deps[v][*k];
                *k += 1;
                if !live[w] {
                    continue;
                }
                match mark[w] {
                    Mark::New => {
                        mark[w] = Mark::Active;
                        stack.push((w, 0));
                    }
                    Mark::Active => {
                        if !in_cycle[w] {
                            let pos = stack.iter().position(|&(x, _)| x == w).unwrap();
                            let cyc: Vec<usize> = stack[pos..].iter().map(|&(x, _)| x).collect();
                            for &x in &cyc {
                                in_cycle[x] = true;
                            }
                            cycles.push(cyc);
                        }
                    }
                    Mark::Done => {}
                }
            } else {
                mark[v] = Mark::Done;
                order.push(v);
                stack.pop();
            }
        }
    }
    (order, cycles)
}

/// Problems in the standard library itself: parse errors, bad attributes, and unknown or
/// malformed types in signatures. A test keeps this empty.
pub fn prelude_problems() -> Vec<(String, Diagnostic)> {
    let p = prelude();
    let mut out = p.diagnostics.clone();
    for m in p.modules.values() {
        let mut c = Checker::new("", m.source);
        for d in m.items.values() {
            let mut inst = Inst::default();
            for g in &d.generics {
                let v = c.sub.fresh_ty(g);
                inst.generics.insert(g.clone(), v);
            }
            for prm in &d.params {
                c.ty_of(&prm.ty, &mut inst, Some(&m.file));
            }
            if let Some(r) = &d.ret {
                c.ty_of(r, &mut inst, Some(&m.file));
            }
        }
        out.extend(c.diags.into_iter().map(|d| (m.file.clone(), d)));
    }
    out
}

/// The file formats an output of this type can be written as (spec/language.md, `output`);
/// `None` when any extension is accepted (a type the checker does not know precisely).
fn output_formats(t: &Ty) -> Option<&'static [&'static str]> {
    Some(match t {
        Ty::Domain(n, _) => match n.as_str() {
            "Volume" => &["sgy", "segy", "npy"],
            "Traces" | "Tensor" | "Embeddings" => &["npy", "safetensors"],
            "Index" => &["index"],
            _ => return None,
        },
        Ty::Table(_) => &["csv", "parquet"],
        Ty::Named(n) => match n.as_str() {
            "Forecast" | "Series" => &["csv", "parquet"],
            "Metrics" | "Report" => &["json"],
            "Retrieved" | "Docs" | "Chunks" => &["jsonl", "json"],
            _ => return None,
        },
        Ty::Arrow(n, _, _) if n == "Trained" => &["mlpm"],
        Ty::Record(_) | Ty::List(_) => &["json"],
        _ => return None,
    })
}

/// Whether `s` is a real calendar date written `YYYY-MM-DD`.
pub(crate) fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        s.get(r)
            .filter(|t| t.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|t| t.parse::<u32>().ok())
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}
