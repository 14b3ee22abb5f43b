//! The standard library, parsed once: modules of `op` and `fn` declarations with their docs.

use mlp_diagnostics::Diagnostic;
use mlp_syntax::ast::{self, Expr, ExprKind, ItemKind, Param, TypeExpr};
use std::collections::BTreeMap;
use std::sync::OnceLock;

include!(concat!(env!("OUT_DIR"), "/stdlib.rs"));

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeclKind {
    /// A runtime operation: every call is a plan node.
    Op,
    /// A compile-time constructor of a configuration value (a `fn` without a body).
    Builtin,
    /// A user composition (a `fn` with a body), expanded at each call.
    Composition,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Device {
    Cpu,
    Gpu,
    Any,
}

/// A callable declaration, from the standard library or the user's file.
#[derive(Clone, Debug, PartialEq)]
pub struct Decl {
    pub module: String,
    pub name: String,
    pub kind: DeclKind,
    pub generics: Vec<String>,
    pub params: Vec<Param>,
    pub ret: Option<TypeExpr>,
    pub body: Option<ast::FnBody>,
    pub doc: Option<String>,
    pub version: u32,
    pub device: Device,
    /// `@resources(memory: 4 GiB, gpu: 1, cpu: 2)`: (memory bytes, gpus, cpus).
    pub memory: Option<u64>,
    pub gpu: u32,
    pub cpu: Option<f64>,
    /// The file that declares it ("stdlib/nn.mlp" or the user's path) and the name's span.
    pub file: String,
    pub span: ast::Span,
}

impl Decl {
    pub fn qualified(&self) -> String {
        if self.module.is_empty() {
            self.name.clone()
        } else {
            format!("{}.{}", self.module, self.name)
        }
    }
    /// Methods are declarations whose first parameter is `self`.
    pub fn is_method(&self) -> bool {
        self.params.first().is_some_and(|p| p.name.name == "self")
    }
    /// A one-line signature for hover and help messages.
    pub fn signature(&self, src: &str) -> String {
        let kw = match self.kind {
            DeclKind::Op => "op",
            _ => "fn",
        };
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| {
                let ty = slice(src, p.ty.span());
                match &p.default {
                    Some(d) => format!("{}: {} = {}", p.name.name, ty, slice(src, d.span)),
                    None => format!("{}: {}", p.name.name, ty),
                }
            })
            .collect();
        let ret = self
            .ret
            .as_ref()
            .map(|r| format!(" -> {}", slice(src, r.span())))
            .unwrap_or_default();
        format!("{kw} {}({}){ret}", self.qualified(), params.join(", "))
    }
}

fn slice(src: &str, s: ast::Span) -> &str {
    src.get(s.range()).unwrap_or("?")
}

pub struct Module {
    pub name: String,
    pub file: String,
    pub source: &'static str,
    pub items: BTreeMap<String, Decl>,
}

pub struct Prelude {
    pub modules: BTreeMap<String, Module>,
    /// Method name → declarations (from every module) that take `self`.
    pub methods: BTreeMap<String, Vec<(String, String)>>,
    /// Problems in the standard library itself; a test keeps this empty.
    pub diagnostics: Vec<(String, Diagnostic)>,
}

impl Prelude {
    pub fn decl(&self, module: &str, name: &str) -> Option<&Decl> {
        self.modules.get(module)?.items.get(name)
    }
    pub fn source_of(&self, file: &str) -> Option<&'static str> {
        self.modules
            .values()
            .find(|m| m.file == file)
            .map(|m| m.source)
    }
}

static PRELUDE: OnceLock<Prelude> = OnceLock::new();

pub fn prelude() -> &'static Prelude {
    PRELUDE.get_or_init(build)
}

fn build() -> Prelude {
    let mut modules = BTreeMap::new();
    let mut methods: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut diagnostics = Vec::new();
    for (name, source) in STDLIB {
        let file = format!("stdlib/{name}.mlp");
        let parsed = mlp_syntax::parse(source);
        for d in parsed.diagnostics {
            diagnostics.push((file.clone(), d));
        }
        let mut items = BTreeMap::new();
        for item in parsed.file.items {
            if let Some(decl) = decl_of(name, &file, &item, &mut diagnostics) {
                if decl.is_method() {
                    methods
                        .entry(decl.name.clone())
                        .or_default()
                        .push((name.to_string(), decl.name.clone()));
                }
                items.insert(decl.name.clone(), decl);
            }
        }
        modules.insert(
            name.to_string(),
            Module {
                name: name.to_string(),
                file,
                source,
                items,
            },
        );
    }
    Prelude {
        modules,
        methods,
        diagnostics,
    }
}

/// Turns an item into a declaration, reading its attributes.
pub fn decl_of(
    module: &str,
    file: &str,
    item: &ast::Item,
    diags: &mut Vec<(String, Diagnostic)>,
) -> Option<Decl> {
    let (name, kind, generics, params, ret, body) = match &item.kind {
        ItemKind::Op(o) => (
            &o.name,
            DeclKind::Op,
            &o.generics,
            &o.params,
            Some(o.ret.clone()),
            None,
        ),
        ItemKind::Fn(f) => {
            let kind = if f.body.is_some() {
                DeclKind::Composition
            } else {
                DeclKind::Builtin
            };
            (
                &f.name,
                kind,
                &f.generics,
                &f.params,
                f.ret.clone(),
                f.body.clone(),
            )
        }
        _ => return None,
    };
    let mut decl = Decl {
        module: module.to_string(),
        name: name.name.clone(),
        kind,
        generics: generics.iter().map(|g| g.name.clone()).collect(),
        params: params.clone(),
        ret,
        body,
        doc: item.doc.clone(),
        version: 1,
        device: Device::Cpu,
        memory: None,
        gpu: 0,
        cpu: None,
        file: file.to_string(),
        span: name.span,
    };
    for attr in &item.attrs {
        let first = attr.args.first().map(|a| &a.value);
        match attr.name.name.as_str() {
            "version" => match first.map(|e| &e.kind) {
                Some(ExprKind::Int { value, .. }) if *value >= 1 && *value <= u32::MAX as i64 => {
                    decl.version = *value as u32
                }
                _ => diags.push((
                    file.to_string(),
                    Diagnostic::error("E0210", "`@version` takes a positive integer")
                        .at(attr.span, "here"),
                )),
            },
            "device" => match first.map(|e| &e.kind) {
                Some(ExprKind::Str(s)) if s == "gpu" => decl.device = Device::Gpu,
                Some(ExprKind::Str(s)) if s == "cpu" => decl.device = Device::Cpu,
                Some(ExprKind::Str(s)) if s == "any" => decl.device = Device::Any,
                _ => diags.push((
                    file.to_string(),
                    Diagnostic::error("E0210", "`@device` takes \"cpu\", \"gpu\" or \"any\"")
                        .at(attr.span, "here"),
                )),
            },
            "resources" => {
                for a in &attr.args {
                    let key = a.name.as_ref().map(|n| n.name.as_str()).unwrap_or("");
                    match (key, &a.value.kind) {
                        ("memory", ExprKind::Quantity { value, unit, .. }) => {
                            if let Some((crate::types::QKind::Bytes, f, _)) = crate::types::unit_info(unit) {
                                decl.memory = Some((value * f) as u64);
                            }
                        }
                        ("gpu", ExprKind::Int { value, .. }) => decl.gpu = (*value).clamp(0, 64) as u32,
                        ("cpu", ExprKind::Int { value, .. }) => decl.cpu = Some(*value as f64),
                        ("cpu", ExprKind::Float { value, .. }) => decl.cpu = Some(*value),
                        _ => diags.push((
                            file.to_string(),
                            Diagnostic::error("E0210", "`@resources` takes `memory: <Bytes>`, `gpu: <Int>`, `cpu: <Number>`")
                                .at(a.span, "not understood"),
                        )),
                    }
                }
            }
            _ => {}
        }
    }
    Some(decl)
}

/// Whether an expression is a literal the prelude can use as a default without evaluation.
pub fn is_literal(e: &Expr) -> bool {
    matches!(
        e.kind,
        ExprKind::Int { .. }
            | ExprKind::Float { .. }
            | ExprKind::Str(_)
            | ExprKind::Bool(_)
            | ExprKind::Quantity { .. }
    )
}
