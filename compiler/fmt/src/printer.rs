//! From the tree (plus the comment list) to a [`Doc`]: items, statements, types and
//! expressions in canonical form. Sequences live in `seq.rs`.

use crate::comments::Comments;
use crate::doc::{concat, text, Doc};
use crate::seq::{Elem, ARGS, BODY, COLUMNS, IMPORTS, LIST, PAREN, RECORD};
use mlp_syntax::ast::*;

pub struct Printer<'a> {
    pub(crate) c: Comments<'a>,
}

impl<'a> Printer<'a> {
    pub fn new(src: &'a str, comments: &'a [Comment]) -> Self {
        Printer {
            c: Comments::new(src, comments),
        }
    }

    /// Comments before `pos` that no list slot took: each one ends its line, and the code
    /// after it continues one level deeper.
    pub fn flush(&mut self, pos: usize) -> Doc {
        let mut parts = Vec::new();
        let mut at_line_start = false;
        for t in self.c.before(pos as u32) {
            if at_line_start {
                parts.push(text(t.text()));
            } else if t.own_line {
                parts.push(Doc::HardCont);
                parts.push(text(t.text()));
            } else {
                parts.push(Doc::Suffix(t.text()));
            }
            parts.push(Doc::HardCont);
            at_line_start = true;
        }
        concat(parts)
    }

    /// Comments before `pos`, each on its own line (before an item's keyword).
    fn own_lines(&mut self, pos: u32) -> Doc {
        let mut parts = Vec::new();
        for t in self.c.before(pos) {
            parts.push(text(t.text()));
            parts.push(Doc::Hard);
        }
        concat(parts)
    }

    /// The position of the first token after `pos`.
    fn next_token(&self, pos: u32) -> usize {
        self.c.skip_trivia(pos as usize)
    }

    /// The bracket at the first token after `pos`, if it is `open`, and its match.
    fn brackets(&self, pos: u32, open: u8) -> Option<(usize, usize)> {
        let at = self.next_token(pos);
        if self.c.byte(at) != Some(open) {
            return None;
        }
        Some((at, self.c.matching(at)?))
    }

    pub fn ident(&mut self, id: &Ident) -> Doc {
        concat(vec![
            self.flush(id.span.start as usize),
            text(id.name.as_str()),
        ])
    }

    // ------------------------------------------------------------------ items

    pub fn item(&mut self, item: &Item) -> Doc {
        let mut parts = Vec::new();
        // Comments between the keyword and the name stay after the keyword: above it they
        // would end the item's doc comment.
        let keyword = match item.attrs.last() {
            Some(a) => self.next_token(self.c.code_end(a.span.end)) as u32,
            None => item.span.start,
        };
        for (k, a) in item.attrs.iter().enumerate() {
            parts.push(self.own_lines(a.span.start));
            parts.push(self.attr(a));
            let limit = item.attrs.get(k + 1).map_or(keyword, |n| n.span.start);
            if let Some(t) = self.c.trailing(self.c.code_end(a.span.end), limit) {
                parts.push(Doc::Suffix(t.text()));
            }
            parts.push(Doc::Hard);
        }
        parts.push(self.own_lines(keyword));
        parts.push(match &item.kind {
            ItemKind::Import(i) => self.import(i),
            ItemKind::Pipeline(p) => self.pipeline(p),
            ItemKind::Fn(f) => self.fn_decl(f),
            ItemKind::Op(o) => self.op_decl(o),
        });
        for t in self.c.before(self.c.code_end(item.span.end)) {
            parts.push(Doc::Suffix(t.text()));
        }
        concat(parts)
    }

    fn attr(&mut self, a: &Attr) -> Doc {
        let mut parts = vec![text("@"), self.ident(&a.name)];
        match self.brackets(a.name.span.end, b'(') {
            Some((open, close)) if !a.args.is_empty() || self.c.any_before(close as u32) => {
                let elems: Vec<_> = a.args.iter().map(Elem::Arg).collect();
                parts.push(self.seq(&ARGS, &elems, Some(open), close));
            }
            _ if !a.args.is_empty() => {
                let elems: Vec<_> = a.args.iter().map(Elem::Arg).collect();
                let close = self.c.code_end(a.span.end) as usize - 1;
                parts.push(self.seq(&ARGS, &elems, None, close));
            }
            _ => {}
        }
        concat(parts)
    }

    fn import(&mut self, i: &Import) -> Doc {
        let mut parts = vec![text("import ")];
        for (k, p) in i.path.iter().enumerate() {
            if k > 0 {
                parts.push(text("."));
            }
            parts.push(self.ident(p));
        }
        let end = i.path.last().map_or(0, |p| p.span.end);
        if let Some(names) = &i.names {
            let dot = self.next_token(end) as u32;
            let brackets = self.brackets(dot + 1, b'{');
            let close = brackets.map_or(end as usize, |(_, c)| c);
            let elems: Vec<_> = names.iter().map(Elem::Import).collect();
            parts.push(self.seq(&IMPORTS, &elems, brackets.map(|(o, _)| o), close));
        }
        if let Some(a) = &i.alias {
            parts.push(text(" as "));
            parts.push(self.ident(a));
        }
        concat(parts)
    }

    /// A parameter list after `after` (the end of the name or of the generics).
    fn params(&mut self, params: &[Param], after: u32) -> Doc {
        let elems: Vec<_> = params.iter().map(Elem::Param).collect();
        match self.brackets(after, b'(') {
            Some((open, close)) => self.seq(&ARGS, &elems, Some(open), close),
            None => self.seq(&ARGS, &elems, None, after as usize),
        }
    }

    pub fn param(&mut self, p: &Param) -> Doc {
        let mut parts = vec![self.ident(&p.name), text(": "), self.ty(&p.ty)];
        if let Some(d) = &p.default {
            parts.push(text(" = "));
            parts.push(self.expr(d));
        }
        concat(parts)
    }

    fn pipeline(&mut self, p: &Pipeline) -> Doc {
        let head = vec![
            text("pipeline "),
            self.ident(&p.name),
            self.params(&p.params, p.name.span.end),
        ];
        let elems: Vec<_> = p.stmts.iter().map(Elem::Stmt).collect();
        let body = self.seq(
            &BODY,
            &elems,
            Some(p.body.start as usize),
            p.body.end as usize - 1,
        );
        concat(vec![concat(head), text(" "), body])
    }

    /// `<A, B>`: returns the doc and where the generics end.
    fn generics(&mut self, generics: &[Ident], name: &Ident) -> (Doc, u32) {
        if generics.is_empty() {
            return (Doc::Nil, name.span.end);
        }
        let end = self
            .brackets(name.span.end, b'<')
            .map_or(generics[generics.len() - 1].span.end, |(_, c)| c as u32 + 1);
        let mut parts = vec![text("<")];
        for (k, g) in generics.iter().enumerate() {
            if k > 0 {
                parts.push(text(", "));
            }
            parts.push(self.ident(g));
        }
        parts.push(text(">"));
        (concat(parts), end)
    }

    fn fn_decl(&mut self, f: &FnDecl) -> Doc {
        let (generics, after) = self.generics(&f.generics, &f.name);
        let mut parts = vec![
            text("fn "),
            self.ident(&f.name),
            generics,
            self.params(&f.params, after),
        ];
        if let Some(r) = &f.ret {
            parts.push(text(" -> "));
            parts.push(self.ty(r));
        }
        if let Some(b) = &f.body {
            let mut elems: Vec<_> = b.lets.iter().map(Elem::Let).collect();
            elems.push(Elem::Expr(&b.result));
            parts.push(text(" "));
            parts.push(self.seq(
                &BODY,
                &elems,
                Some(b.span.start as usize),
                b.span.end as usize - 1,
            ));
        }
        concat(parts)
    }

    fn op_decl(&mut self, o: &OpDecl) -> Doc {
        let (generics, after) = self.generics(&o.generics, &o.name);
        concat(vec![
            text("op "),
            self.ident(&o.name),
            generics,
            self.params(&o.params, after),
            text(" -> "),
            self.ty(&o.ret),
        ])
    }

    // ------------------------------------------------------------------ statements

    pub fn stmt(&mut self, s: &Stmt) -> Doc {
        match s {
            Stmt::Let(l) => self.let_stmt(l),
            Stmt::Output { value, target, .. } => {
                let value_doc = self.expr(value);
                let arrow = self.flush(self.next_token(value.span.end));
                concat(vec![
                    text("output "),
                    value_doc,
                    spaced(arrow, "-> "),
                    self.expr(target),
                ])
            }
            Stmt::Deploy { value, .. } => concat(vec![text("deploy "), self.expr(value)]),
            Stmt::Schedule { value, .. } => concat(vec![text("schedule "), self.expr(value)]),
        }
    }

    pub fn let_stmt(&mut self, l: &Let) -> Doc {
        let mut parts = vec![text("let "), self.ident(&l.name)];
        if let Some(t) = &l.ty {
            parts.push(text(": "));
            parts.push(self.ty(t));
        }
        parts.push(text(" = "));
        parts.push(self.expr(&l.value));
        concat(parts)
    }

    // ------------------------------------------------------------------ types

    pub fn ty(&mut self, t: &TypeExpr) -> Doc {
        let lead = self.flush(t.span().start as usize);
        let body = match t {
            TypeExpr::Named {
                name, dims, schema, ..
            } => {
                let mut parts = vec![text(name.name.as_str())];
                if let Some(dims) = dims {
                    parts.push(text("["));
                    for (k, d) in dims.iter().enumerate() {
                        if k > 0 {
                            parts.push(text(", "));
                        }
                        parts.push(self.dim(d));
                    }
                    parts.push(text("]"));
                }
                if let Some(fields) = schema {
                    parts.push(self.field_types(fields));
                }
                concat(parts)
            }
            TypeExpr::List { elem, .. } => concat(vec![text("["), self.ty(elem), text("]")]),
            TypeExpr::Record { fields, .. } => self.field_types(fields),
        };
        concat(vec![lead, body])
    }

    fn field_types(&mut self, fields: &[FieldType]) -> Doc {
        let mut parts = vec![text("{")];
        for (k, f) in fields.iter().enumerate() {
            if k > 0 {
                parts.push(text(", "));
            }
            parts.push(self.ident(&f.name));
            parts.push(text(": "));
            parts.push(self.ty(&f.ty));
        }
        parts.push(text("}"));
        concat(parts)
    }

    fn dim(&mut self, d: &DimArg) -> Doc {
        match d {
            DimArg::Int(v, s) => concat(vec![self.flush(s.start as usize), text(v.to_string())]),
            DimArg::Hole(s) => concat(vec![self.flush(s.start as usize), text("_")]),
            DimArg::Type(t) => self.ty(t),
            DimArg::Arrow(a, b, _) => {
                let a = self.dim(a);
                concat(vec![a, text(" -> "), self.dim(b)])
            }
        }
    }

    // ------------------------------------------------------------------ expressions

    pub fn expr(&mut self, e: &Expr) -> Doc {
        let lead = self.flush(e.span.start as usize);
        let close = e.span.end as usize - 1;
        let body = match &e.kind {
            ExprKind::Int { text: t, .. } | ExprKind::Float { text: t, .. } => text(t.as_str()),
            ExprKind::Quantity { number, unit, .. } => {
                if unit.starts_with('/') {
                    text(format!("{number}{unit}"))
                } else {
                    text(format!("{number} {unit}"))
                }
            }
            ExprKind::Str(s) => text(escape(s)),
            ExprKind::Bool(b) => text(if *b { "true" } else { "false" }),
            ExprKind::Ident(n) => text(n.as_str()),
            ExprKind::List(items) => {
                let elems: Vec<_> = items.iter().map(Elem::Expr).collect();
                self.seq(&LIST, &elems, None, close)
            }
            ExprKind::Record(fields) => {
                let elems: Vec<_> = fields
                    .iter()
                    .map(|(n, x)| Elem::Field(n, x, ": "))
                    .collect();
                self.seq(&RECORD, &elems, None, close)
            }
            ExprKind::Columns(cols) => {
                let elems: Vec<_> = cols.iter().map(|(n, x)| Elem::Field(n, x, " = ")).collect();
                self.seq(&COLUMNS, &elems, None, close)
            }
            ExprKind::Call { callee, args } => self.call(e, callee, args),
            ExprKind::Member { base, name } => {
                let base_doc = self.expr(base);
                let dot = self.flush(self.next_token(base.span.end));
                concat(vec![base_doc, dot, text("."), self.ident(name)])
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let lhs_doc = self.expr(lhs);
                let op_doc = self.flush(self.next_token(lhs.span.end));
                let sym = format!("{} ", op.symbol());
                concat(vec![lhs_doc, spaced(op_doc, &sym), self.expr(rhs)])
            }
            ExprKind::Unary { op, operand } => {
                let sym = match op {
                    UnOp::Neg => "-",
                    UnOp::Not => "!",
                };
                concat(vec![text(sym), self.expr(operand)])
            }
            ExprKind::Paren(inner) => self.seq(&PAREN, &[Elem::Expr(inner)], None, close),
        };
        concat(vec![lead, body])
    }

    /// A call: `f(a, b: 1)`, with trailing column blocks printed after the parentheses
    /// (`derive(t) { r = a / b }`, `t.derive { r = a / b }`).
    fn call(&mut self, e: &Expr, callee: &Expr, args: &[Arg]) -> Doc {
        let blocks = args
            .iter()
            .rev()
            .take_while(|a| a.name.is_none() && matches!(a.value.kind, ExprKind::Columns(_)))
            .count();
        let (in_parens, blocks) = args.split_at(args.len() - blocks);
        let mut parts = vec![self.expr(callee)];
        if !in_parens.is_empty() || blocks.is_empty() {
            let elems: Vec<_> = in_parens.iter().map(Elem::Arg).collect();
            parts.push(match self.brackets(callee.span.end, b'(') {
                Some((open, close)) => self.seq(&ARGS, &elems, Some(open), close),
                None => {
                    let close = blocks.first().map_or(e.span.end, |b| b.span.start);
                    self.seq(&ARGS, &elems, None, close as usize)
                }
            });
        }
        for b in blocks {
            parts.push(text(" "));
            parts.push(self.expr(&b.value));
        }
        concat(parts)
    }
}

/// ` op ` after a possible comment break: no space at the start of a new line.
fn spaced(comments: Doc, sym: &str) -> Doc {
    let broke = matches!(&comments, Doc::Concat(v) if !v.is_empty());
    concat(vec![if broke { comments } else { text(" ") }, text(sym)])
}

/// A string literal with canonical escapes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
