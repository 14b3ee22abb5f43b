//! Bracketed sequences: argument, parameter and element lists, column blocks, parentheses
//! and statement bodies. They share one layout (one element per line when broken, comments
//! before, after and between elements kept in place) and differ only in their [`Shape`].

use crate::doc::{concat, group, indent, text, Doc, Fit};
use crate::printer::Printer;
use mlp_syntax::ast::{Arg, Expr, Ident, ImportName, Let, Param, Span, Stmt};

/// How one kind of sequence looks.
pub struct Shape {
    pub open: &'static str,
    pub close: &'static str,
    /// A space inside the brackets when flat (`{ a = 1 }`).
    pub pad: bool,
    /// Elements are separated by commas (with a trailing comma when broken).
    pub comma: bool,
    pub fit: Fit,
}

pub const ARGS: Shape = Shape {
    open: "(",
    close: ")",
    pad: false,
    comma: true,
    fit: Fit::Auto,
};
pub const LIST: Shape = Shape {
    open: "[",
    close: "]",
    ..ARGS
};
pub const RECORD: Shape = Shape {
    open: "{",
    close: "}",
    ..ARGS
};
pub const COLUMNS: Shape = Shape {
    pad: true,
    ..RECORD
};
pub const IMPORTS: Shape = Shape {
    open: ".{",
    ..RECORD
};
pub const PAREN: Shape = Shape {
    comma: false,
    fit: Fit::Never,
    ..ARGS
};
pub const BODY: Shape = Shape {
    open: "{",
    close: "}",
    pad: true,
    comma: false,
    fit: Fit::Always,
};

/// One element of a sequence.
#[derive(Clone, Copy)]
pub enum Elem<'a> {
    Expr(&'a Expr),
    Arg(&'a Arg),
    /// A record field (`a: 1`) or a column definition (`a = 1`), with its separator.
    Field(&'a Ident, &'a Expr, &'static str),
    Param(&'a Param),
    Stmt(&'a Stmt),
    Let(&'a Let),
    Import(&'a ImportName),
}

impl Elem<'_> {
    pub fn span(&self) -> Span {
        match self {
            Elem::Expr(e) => e.span,
            Elem::Arg(a) => a.span,
            Elem::Field(n, e, _) => n.span.to(e.span),
            Elem::Param(p) => p.span,
            Elem::Stmt(s) => s.span(),
            Elem::Let(l) => l.span,
            Elem::Import(i) => i
                .alias
                .as_ref()
                .map_or(i.name.span, |a| i.name.span.to(a.span)),
        }
    }
}

impl Printer<'_> {
    fn elem(&mut self, e: Elem<'_>) -> Doc {
        match e {
            Elem::Expr(x) => self.expr(x),
            Elem::Arg(a) => match &a.name {
                Some(n) => concat(vec![self.ident(n), text(": "), self.expr(&a.value)]),
                None => self.expr(&a.value),
            },
            Elem::Field(n, x, sep) => concat(vec![self.ident(n), text(sep), self.expr(x)]),
            Elem::Param(p) => self.param(p),
            Elem::Stmt(s) => self.stmt(s),
            Elem::Let(l) => self.let_stmt(l),
            Elem::Import(i) => {
                let mut parts = vec![self.ident(&i.name)];
                if let Some(a) = &i.alias {
                    parts.push(text(" as "));
                    parts.push(self.ident(a));
                }
                concat(parts)
            }
        }
    }

    /// Prints a sequence whose opening bracket is at `open` (when the source has one) and
    /// whose closing bracket is at `close`. Comments before `open` come first; comments up to
    /// `close` stay inside.
    pub fn seq(
        &mut self,
        shape: &Shape,
        elems: &[Elem<'_>],
        open: Option<usize>,
        close: usize,
    ) -> Doc {
        let lead = match open {
            Some(o) => self.flush(o),
            None => Doc::Nil,
        };
        let close = close as u32;
        if elems.is_empty() && !self.c.any_before(close) {
            return concat(vec![lead, text(shape.open), text(shape.close)]);
        }
        let first_break = || if shape.pad { Doc::Line } else { Doc::SoftLine };
        let mut inner = Vec::new();
        for (i, &e) in elems.iter().enumerate() {
            let span = e.span();
            let end = self.c.code_end(span.end);
            let brk = if i == 0 { first_break() } else { Doc::Line };
            let mut started = false;
            for t in self.c.before(span.start) {
                if !t.own_line && !started {
                    // It trails the bracket or the previous element: keep it on that line.
                    inner.push(Doc::Suffix(t.text()));
                    continue;
                }
                if i > 0 || started {
                    push_blank(&mut inner, t.blank_before);
                }
                inner.push(if started { Doc::Hard } else { brk.clone() });
                started = true;
                inner.push(text(t.text()));
            }
            if i > 0 || started {
                push_blank(&mut inner, self.c.blank_before(span.start as usize));
            }
            inner.push(if started { Doc::Hard } else { brk });
            inner.push(self.elem(e));
            // Comments inside the element that nothing in it took.
            for t in self.c.before(end) {
                inner.push(Doc::Suffix(t.text()));
            }
            let last = i + 1 == elems.len();
            if shape.comma {
                inner.push(if last { Doc::IfBreak(",") } else { text(",") });
            }
            let limit = if last {
                close
            } else {
                elems[i + 1].span().start
            };
            if let Some(t) = self.c.trailing(end, limit) {
                inner.push(Doc::Suffix(t.text()));
            }
        }
        // Comments after the last element stay inside the brackets.
        let mut started = false;
        for t in self.c.before(close) {
            if !t.own_line && !started {
                inner.push(Doc::Suffix(t.text()));
                continue;
            }
            if !elems.is_empty() || started {
                push_blank(&mut inner, t.blank_before);
            }
            started = true;
            inner.push(Doc::Hard);
            inner.push(text(t.text()));
        }
        let last_break = if shape.pad { Doc::Line } else { Doc::SoftLine };
        concat(vec![
            lead,
            group(
                concat(vec![
                    text(shape.open),
                    indent(concat(inner)),
                    last_break,
                    text(shape.close),
                ]),
                shape.fit,
            ),
        ])
    }
}

fn push_blank(parts: &mut Vec<Doc>, blank: bool) {
    if blank {
        parts.push(Doc::Blank);
    }
}
