//! From text to AST: the lexical scan, then pest on each top-level item, then (for a
//! pipeline that fails to parse) pest on each statement, so one error hides nothing else.

use crate::ast::*;
use crate::scan::{scan, MAX_NESTING};
use mlp_diagnostics::Diagnostic;
use pest::iterators::Pair;
use pest::Parser;

#[derive(pest_derive::Parser)]
#[grammar = "grammar.pest"]
struct MlpParser;

/// Most operators or postfix steps accepted in one expression. Longer chains would build
/// trees deep enough to threaten the stack in later recursive passes.
pub const MAX_EXPR_PARTS: usize = 1024;

/// Most operations an expression may nest inside, counting the operator chains and postfix
/// steps of every enclosing expression: a bound on the depth of the tree.
pub const MAX_TREE_DEPTH: usize = 4096;

/// The result of parsing one file: the tree of everything that parsed, and diagnostics
/// for everything that did not.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    pub file: File,
    pub diagnostics: Vec<Diagnostic>,
    /// Names of items that did not parse (`fn f<>() ..`), so the checker does not add an
    /// "unknown name" error at every use of them.
    pub broken: Vec<String>,
}

/// Parses a file's bytes. Invalid UTF-8 and binary content are diagnostics, not panics.
pub fn parse_bytes(bytes: &[u8]) -> Parsed {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text),
        Err(e) => {
            let at = e.valid_up_to();
            Parsed {
                file: File { items: vec![], comments: vec![] },
                diagnostics: vec![Diagnostic::error("E0004", "the file is not valid UTF-8")
                    .at(Span::new(at, at + 1), format!("invalid UTF-8 byte at offset {at}"))
                    .help("mlp files are UTF-8 text; re-encode the file or check that it is not binary")],
                broken: vec![],
            }
        }
    }
}

pub fn parse(text: &str) -> Parsed {
    if let Some(at) = text.find('\0') {
        return Parsed {
            file: File {
                items: vec![],
                comments: vec![],
            },
            diagnostics: vec![Diagnostic::error(
                "E0004",
                "the file looks binary (it contains a NUL byte)",
            )
            .at(Span::new(at, at + 1), format!("NUL byte at offset {at}"))
            .help("mlp files are UTF-8 text")],
            broken: vec![],
        };
    }
    let s = scan(text);
    let scan_errors: Vec<Span> = s
        .diagnostics
        .iter()
        .filter_map(|d| d.primary_span())
        .collect();
    let mut cx = Cx {
        text,
        diags: s.diagnostics,
        comments: &s.comments,
        scan_errors,
        broken: vec![],
        tree_depth: 0,
        too_deep_reported: false,
    };
    if text.trim().is_empty() || (s.chunks.is_empty() && cx.diags.is_empty()) {
        cx.diags.push(
            Diagnostic::warning("W0001", "the file defines nothing")
                .at(Span::new(0, 0), "empty file")
                .help("add a `pipeline` or `fn`, or delete the file"),
        );
    }
    let deep_at: Vec<usize> = cx
        .diags
        .iter()
        .filter(|d| d.code == "E0003")
        .filter_map(|d| d.primary_span())
        .map(|s| s.start as usize)
        .collect();
    let mut items = Vec::new();
    for chunk in &s.chunks {
        let r = chunk.range();
        if deep_at.iter().any(|&d| r.contains(&d)) {
            continue; // already reported; parsing it could exhaust the stack
        }
        if let Some(item) = cx.item(r.start, &text[r.clone()]) {
            items.push(item);
        }
    }
    let comments = s.comments.clone();
    let broken = std::mem::take(&mut cx.broken);
    let mut diagnostics = cx.diags;
    diagnostics.sort_by_key(|d| {
        (
            d.primary_span().map(|s| s.start).unwrap_or(0),
            d.code.clone(),
        )
    });
    diagnostics.dedup();
    Parsed {
        file: File { items, comments },
        diagnostics,
        broken,
    }
}

struct Cx<'a> {
    text: &'a str,
    diags: Vec<Diagnostic>,
    comments: &'a [Comment],
    /// Where the lexical scan already found a problem; pest's error in the same piece of
    /// text would only repeat it less precisely.
    scan_errors: Vec<Span>,
    broken: Vec<String>,
    /// Operations of the enclosing expressions (see `expr`).
    tree_depth: usize,
    too_deep_reported: bool,
}

const KEYWORDS: &[&str] = &[
    "import", "pipeline", "fn", "op", "let", "output", "deploy", "schedule", "true", "false", "as",
];

fn rule_name(r: &Rule) -> Option<&'static str> {
    Some(match r {
        Rule::ident => "a name",
        Rule::item | Rule::import | Rule::pipeline | Rule::fn_decl | Rule::op_decl | Rule::attr => {
            "an item (`import`, `pipeline`, `fn`)"
        }
        Rule::EOI => "end of input",
        Rule::expr | Rule::postfix_expr => "an expression",
        Rule::type_expr | Rule::named_type | Rule::list_type | Rule::record_type => "a type",
        Rule::let_stmt | Rule::output_stmt | Rule::deploy_stmt | Rule::schedule_stmt => {
            "a statement (`let`, `output`, `deploy`, `schedule`)"
        }
        Rule::call_args => "`(`",
        Rule::param_list => "`(`",
        Rule::param => "a parameter",
        Rule::arg => "an argument",
        Rule::body | Rule::fn_body => "`{`",
        Rule::ret_type => "`->`",
        Rule::number | Rule::quantity => "a number",
        Rule::string => "a string",
        Rule::unit => "a unit",
        Rule::infix
        | Rule::add
        | Rule::sub
        | Rule::mul
        | Rule::div
        | Rule::or
        | Rule::and
        | Rule::eq
        | Rule::ne
        | Rule::lt
        | Rule::le
        | Rule::gt
        | Rule::ge => "an operator",
        Rule::member => "`.`",
        Rule::col_block => "`{`",
        Rule::field | Rule::field_type | Rule::col_assign => "a field",
        Rule::import_names => "`.{`",
        Rule::import_alias => "`as`",
        Rule::type_dims => "`[`",
        Rule::type_schema => "`{`",
        Rule::generics => "`<`",
        _ => return None,
    })
}

impl<'a> Cx<'a> {
    /// The span of a pair, without the trailing whitespace and comments pest may include
    /// when an optional part after them did not match.
    fn span(&self, base: usize, p: &Pair<'_, Rule>) -> Span {
        let s = p.as_span();
        let start = base + s.start();
        let mut end = base + s.end();
        loop {
            let trimmed = self.text[start..end].trim_end().len();
            end = start + trimmed;
            let k = self
                .comments
                .partition_point(|c| (c.span.end as usize) < end);
            match self.comments.get(k) {
                Some(c) if c.span.end as usize == end && c.span.start as usize >= start => {
                    end = c.span.start as usize
                }
                _ => break,
            }
        }
        Span::new(start, end)
    }

    fn syntax_error(&mut self, base: usize, chunk: &str, e: pest::error::Error<Rule>) {
        let piece = Span::new(base, base + chunk.len());
        if self
            .scan_errors
            .iter()
            .any(|s| piece.start <= s.start && s.start < piece.end.max(piece.start + 1))
        {
            return;
        }
        let pos = match e.location {
            pest::error::InputLocation::Pos(p) => p,
            pest::error::InputLocation::Span((a, _)) => a,
        };
        let mut expected: Vec<&str> = match &e.variant {
            pest::error::ErrorVariant::ParsingError { positives, .. } => {
                positives.iter().filter_map(rule_name).collect()
            }
            pest::error::ErrorVariant::CustomError { .. } => vec![],
        };
        expected.sort();
        expected.dedup();
        let rest = &chunk[pos..];
        // The token found: a word, a string, or one punctuation character (in bytes of `rest`).
        let tok_len = match rest.chars().next() {
            Some(c) if c.is_alphanumeric() || c == '_' => rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len()),
            Some('"') => rest[1..]
                .find(['"', '\n'])
                .map(|k| (k + 2).min(rest.len()))
                .unwrap_or(rest.len()),
            Some(c) => c.len_utf8(),
            None => 0,
        };
        let mut tok_len = tok_len.min(rest.len());
        if tok_len > 40 {
            tok_len = (0..=40)
                .rev()
                .find(|&k| rest.is_char_boundary(k))
                .unwrap_or(0);
        }
        let found = rest[..tok_len].to_string();
        let at_end = pos >= chunk.trim_end().len();
        let found_desc = if at_end {
            "end of input".to_string()
        } else {
            format!("`{found}`")
        };
        let msg = if expected.is_empty() {
            format!("syntax error: unexpected {found_desc}")
        } else {
            format!(
                "syntax error: expected {}, found {found_desc}",
                join_or(&expected)
            )
        };
        // At the end of a piece, point just after the last token rather than at whatever follows.
        let at = if at_end {
            base + chunk.trim_end().len()
        } else {
            base + pos
        };
        let end = if at_end { at } else { at + found.len() };
        let mut d = Diagnostic::error("E0001", msg).at(
            Span::new(at, end.min(self.text.len()).max(at)),
            "unexpected here",
        );
        if KEYWORDS.contains(&found.as_str()) && expected.contains(&"a name") {
            d = d.help(format!(
                "`{found}` is a keyword and cannot be used as a name"
            ));
        }
        self.diags.push(d);
    }

    fn item(&mut self, base: usize, chunk: &str) -> Option<Item> {
        match MlpParser::parse(Rule::item_eoi, chunk) {
            Ok(mut pairs) => {
                let item = pairs.next()?.into_inner().next()?;
                self.build_item(base, item)
            }
            Err(e) => {
                let trimmed = chunk.trim_start();
                if trimmed.starts_with("pipeline") {
                    if let Some(item) = self.recover_pipeline(base, chunk) {
                        return Some(item);
                    }
                }
                self.syntax_error(base, chunk, e);
                if let Some(name) = item_name(chunk) {
                    self.broken.push(name);
                }
                None
            }
        }
    }

    /// Parses a pipeline statement by statement. Returns `None` when even the head does not
    /// parse, in which case the caller reports the item-level error.
    fn recover_pipeline(&mut self, base: usize, chunk: &str) -> Option<Item> {
        let open = find_body_open(chunk)?;
        let head = MlpParser::parse(Rule::pipeline_head_eoi, &chunk[..open]).ok()?;
        let head = head.into_iter().next()?.into_inner().next()?;
        let (name, params) = self.build_pipeline_head(base, head);
        let close = matching_close(chunk, open)
            .or_else(|| chunk.rfind('}').filter(|&c| c > open))
            .unwrap_or(chunk.len());
        let body_text = &chunk[open + 1..close];
        let body_base = base + open + 1;
        let mut stmts = Vec::new();
        for (s, e) in split_statements(body_text) {
            let piece = &body_text[s..e];
            if piece.trim().is_empty() {
                continue;
            }
            match MlpParser::parse(Rule::stmt_eoi, piece) {
                Ok(mut pairs) => {
                    if let Some(st) = pairs.next().and_then(|p| p.into_inner().next()) {
                        if let Some(st) = self.build_stmt(body_base + s, st) {
                            stmts.push(st);
                        }
                    }
                }
                Err(e) => self.syntax_error(body_base + s, piece, e),
            }
        }
        if close == chunk.len() {
            // An unclosed body is already reported by the scanner.
        } else if !chunk[close + 1..].trim().is_empty() && !only_comments(&chunk[close + 1..]) {
            let off =
                close + 1 + (chunk[close + 1..].len() - chunk[close + 1..].trim_start().len());
            self.diags.push(
                Diagnostic::error("E0001", "syntax error: unexpected text after the pipeline").at(
                    Span::new(base + off, base + off + 1),
                    "expected an item here",
                ),
            );
        }
        let start = base + (chunk.len() - chunk.trim_start().len());
        let span = Span::new(start, base + (close + 1).min(chunk.len()));
        let doc = self.doc_before(start);
        Some(Item {
            kind: ItemKind::Pipeline(Pipeline {
                name,
                params,
                stmts,
                body: Span::new(base + open, span.end as usize),
            }),
            attrs: vec![],
            doc,
            span,
        })
    }

    /// The `///` lines right before `pos` (only whitespace between), joined.
    fn doc_before(&self, pos: usize) -> Option<String> {
        let idx = self
            .comments
            .partition_point(|c| (c.span.end as usize) <= pos);
        let mut lines = Vec::new();
        let mut cursor = pos;
        let mut k = idx;
        while k > 0 {
            let c = &self.comments[k - 1];
            let between = &self.text[c.span.end as usize..cursor];
            if !c.doc || !between.trim().is_empty() || between.matches('\n').count() > 1 {
                break;
            }
            let t = c.text.trim_start_matches("///");
            lines.push(t.strip_prefix(' ').unwrap_or(t).to_string());
            cursor = c.span.start as usize;
            k -= 1;
        }
        if lines.is_empty() {
            return None;
        }
        lines.reverse();
        Some(lines.join("\n"))
    }

    fn build_item(&mut self, base: usize, p: Pair<'_, Rule>) -> Option<Item> {
        let span = self.span(base, &p);
        let doc = self.doc_before(span.start as usize);
        let mut attrs = Vec::new();
        let mut kind = None;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::attr => {
                    let aspan = self.span(base, &c);
                    let mut it = c.into_inner();
                    let name = self.ident(base, it.next()?);
                    let args = match it.next() {
                        Some(a) => self.call_args(base, a),
                        None => vec![],
                    };
                    attrs.push(Attr {
                        name,
                        args,
                        span: aspan,
                    });
                }
                Rule::import => kind = Some(ItemKind::Import(self.build_import(base, c)?)),
                Rule::pipeline => {
                    let mut it = c.into_inner();
                    let (name, params) = self.build_pipeline_head(base, it.next()?);
                    let body = it.next()?;
                    let body_span = self.span(base, &body);
                    let stmts = body
                        .into_inner()
                        .filter_map(|s| self.build_stmt(base, s))
                        .collect();
                    kind = Some(ItemKind::Pipeline(Pipeline {
                        name,
                        params,
                        stmts,
                        body: body_span,
                    }));
                }
                Rule::fn_decl => {
                    let mut name = None;
                    let mut generics = vec![];
                    let mut params = vec![];
                    let mut ret = None;
                    let mut body = None;
                    for f in c.into_inner() {
                        match f.as_rule() {
                            Rule::ident => name = Some(self.ident(base, f)),
                            Rule::generics => {
                                generics = f.into_inner().map(|g| self.ident(base, g)).collect()
                            }
                            Rule::param_list => params = self.params(base, f),
                            Rule::ret_type => {
                                ret = f.into_inner().next().map(|t| self.type_expr(base, t))
                            }
                            Rule::fn_body => {
                                let bspan = self.span(base, &f);
                                let mut lets = vec![];
                                let mut result = None;
                                for b in f.into_inner() {
                                    match b.as_rule() {
                                        Rule::let_stmt => {
                                            if let Some(Stmt::Let(l)) = self.build_stmt(base, b) {
                                                lets.push(l);
                                            }
                                        }
                                        Rule::expr => result = self.expr(base, b),
                                        _ => {}
                                    }
                                }
                                body = Some(FnBody {
                                    lets,
                                    result: result?,
                                    span: bspan,
                                });
                            }
                            _ => {}
                        }
                    }
                    kind = Some(ItemKind::Fn(FnDecl {
                        name: name?,
                        generics,
                        params,
                        ret,
                        body,
                    }));
                }
                Rule::op_decl => {
                    let mut name = None;
                    let mut generics = vec![];
                    let mut params = vec![];
                    let mut ret = None;
                    for f in c.into_inner() {
                        match f.as_rule() {
                            Rule::ident => name = Some(self.ident(base, f)),
                            Rule::generics => {
                                generics = f.into_inner().map(|g| self.ident(base, g)).collect()
                            }
                            Rule::param_list => params = self.params(base, f),
                            Rule::ret_type => {
                                ret = f.into_inner().next().map(|t| self.type_expr(base, t))
                            }
                            _ => {}
                        }
                    }
                    kind = Some(ItemKind::Op(OpDecl {
                        name: name?,
                        generics,
                        params,
                        ret: ret?,
                    }));
                }
                _ => {}
            }
        }
        Some(Item {
            kind: kind?,
            attrs,
            doc,
            span,
        })
    }

    fn build_import(&mut self, base: usize, p: Pair<'_, Rule>) -> Option<Import> {
        let mut path = vec![];
        let mut names = None;
        let mut alias = None;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::module_path => path = c.into_inner().map(|i| self.ident(base, i)).collect(),
                Rule::import_names => {
                    names = Some(
                        c.into_inner()
                            .filter_map(|n| {
                                let mut it = n.into_inner();
                                let name = self.ident(base, it.next()?);
                                let alias = it.next().map(|a| self.ident(base, a));
                                Some(ImportName { name, alias })
                            })
                            .collect(),
                    )
                }
                Rule::import_alias => alias = c.into_inner().next().map(|a| self.ident(base, a)),
                _ => {}
            }
        }
        Some(Import { path, names, alias })
    }

    fn build_pipeline_head(&mut self, base: usize, p: Pair<'_, Rule>) -> (Ident, Vec<Param>) {
        let mut name = Ident {
            name: String::new(),
            span: self.span(base, &p),
        };
        let mut params = vec![];
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::ident => name = self.ident(base, c),
                Rule::param_list => params = self.params(base, c),
                _ => {}
            }
        }
        (name, params)
    }

    fn params(&mut self, base: usize, p: Pair<'_, Rule>) -> Vec<Param> {
        p.into_inner()
            .filter_map(|param| {
                let span = self.span(base, &param);
                let mut it = param.into_inner();
                let name = self.ident(base, it.next()?);
                let ty = self.type_expr(base, it.next()?);
                let default = it.next().and_then(|d| self.expr(base, d));
                let doc = self.doc_before(span.start as usize);
                Some(Param {
                    name,
                    ty,
                    default,
                    doc,
                    span,
                })
            })
            .collect()
    }

    fn build_stmt(&mut self, base: usize, p: Pair<'_, Rule>) -> Option<Stmt> {
        let span = self.span(base, &p);
        let rule = p.as_rule();
        let mut it = p.into_inner();
        Some(match rule {
            Rule::let_stmt => {
                let name = self.ident(base, it.next()?);
                let mut ty = None;
                let mut value = None;
                for c in it {
                    if c.as_rule() == Rule::expr {
                        value = self.expr(base, c);
                    } else {
                        ty = Some(self.type_expr(base, c));
                    }
                }
                let doc = self.doc_before(span.start as usize);
                Stmt::Let(Let {
                    name,
                    ty,
                    value: value?,
                    doc,
                    span,
                })
            }
            Rule::output_stmt => {
                let value = self.expr(base, it.next()?)?;
                let target = self.expr(base, it.next()?)?;
                Stmt::Output {
                    value,
                    target,
                    span,
                }
            }
            Rule::deploy_stmt => Stmt::Deploy {
                value: self.expr(base, it.next()?)?,
                span,
            },
            Rule::schedule_stmt => Stmt::Schedule {
                value: self.expr(base, it.next()?)?,
                span,
            },
            _ => return None,
        })
    }

    fn ident(&self, base: usize, p: Pair<'_, Rule>) -> Ident {
        Ident {
            name: p.as_str().to_string(),
            span: self.span(base, &p),
        }
    }

    fn type_expr(&mut self, base: usize, p: Pair<'_, Rule>) -> TypeExpr {
        let span = self.span(base, &p);
        match p.as_rule() {
            Rule::list_type => {
                let inner = p
                    .into_inner()
                    .next()
                    .expect("grammar: list_type has an element type");
                TypeExpr::List {
                    elem: Box::new(self.type_expr(base, inner)),
                    span,
                }
            }
            Rule::record_type => TypeExpr::Record {
                fields: self.field_types(base, p),
                span,
            },
            _ => {
                let mut it = p.into_inner();
                let name = self.ident(base, it.next().expect("grammar: named_type has a name"));
                let mut dims = None;
                let mut schema = None;
                if let Some(a) = it.next() {
                    match a.as_rule() {
                        Rule::type_dims => {
                            dims = Some(a.into_inner().map(|d| self.dim_arg(base, d)).collect())
                        }
                        _ => schema = Some(self.field_types(base, a)),
                    }
                }
                TypeExpr::Named {
                    name,
                    dims,
                    schema,
                    span,
                }
            }
        }
    }

    fn field_types(&mut self, base: usize, p: Pair<'_, Rule>) -> Vec<FieldType> {
        p.into_inner()
            .filter_map(|f| {
                let mut it = f.into_inner();
                let name = self.ident(base, it.next()?);
                let ty = self.type_expr(base, it.next()?);
                Some(FieldType { name, ty })
            })
            .collect()
    }

    fn dim_arg(&mut self, base: usize, p: Pair<'_, Rule>) -> DimArg {
        let span = self.span(base, &p);
        match p.as_rule() {
            Rule::dim_int => match p.as_str().parse::<i64>() {
                Ok(v) => DimArg::Int(v, span),
                Err(_) => {
                    self.diags.push(
                        Diagnostic::error("E0006", "dimension too large")
                            .at(span, "does not fit in 64 bits"),
                    );
                    DimArg::Hole(span)
                }
            },
            Rule::dim_hole => DimArg::Hole(span),
            Rule::dim_arrow => {
                let mut it = p.into_inner();
                let a = self.dim_arg(base, it.next().expect("grammar: arrow has two sides"));
                let b = self.dim_arg(base, it.next().expect("grammar: arrow has two sides"));
                DimArg::Arrow(Box::new(a), Box::new(b), span)
            }
            _ => DimArg::Type(self.type_expr(base, p)),
        }
    }

    fn call_args(&mut self, base: usize, p: Pair<'_, Rule>) -> Vec<Arg> {
        p.into_inner()
            .filter_map(|a| {
                let span = self.span(base, &a);
                let mut it = a.into_inner();
                let first = it.next()?;
                if first.as_rule() == Rule::ident {
                    let name = self.ident(base, first);
                    let value = self.expr(base, it.next()?)?;
                    Some(Arg {
                        name: Some(name),
                        value,
                        span,
                    })
                } else {
                    Some(Arg {
                        name: None,
                        value: self.expr(base, first)?,
                        span,
                    })
                }
            })
            .collect()
    }

    /// Builds an expression with precedence climbing over pest's flat operator list.
    /// Builds an expression, keeping the depth of the tree it nests in bounded: operator
    /// chains and postfix steps of enclosing expressions count toward `MAX_TREE_DEPTH`, so
    /// recursive passes over the tree cannot exhaust the stack.
    fn expr(&mut self, base: usize, p: Pair<'_, Rule>) -> Option<Expr> {
        let weight = p.clone().into_inner().count();
        if !self.enter(weight, base, &p) {
            return None;
        }
        let r = self.expr_chain(base, p);
        self.tree_depth -= weight;
        r
    }

    fn enter(&mut self, weight: usize, base: usize, p: &Pair<'_, Rule>) -> bool {
        if self.tree_depth + weight > MAX_TREE_DEPTH {
            if !self.too_deep_reported {
                self.too_deep_reported = true;
                self.diags.push(
                    Diagnostic::error(
                        "E0003",
                        format!("expression nests more than {MAX_TREE_DEPTH} operations deep"),
                    )
                    .at(self.span(base, p), "too deep")
                    .help("split it into `let` bindings"),
                );
            }
            return false;
        }
        self.tree_depth += weight;
        true
    }

    fn expr_chain(&mut self, base: usize, p: Pair<'_, Rule>) -> Option<Expr> {
        let span = self.span(base, &p);
        let parts: Vec<Pair<'_, Rule>> = p.into_inner().collect();
        if parts.len() > MAX_EXPR_PARTS {
            self.diags.push(
                Diagnostic::error(
                    "E0003",
                    format!(
                        "expression has {} parts; at most {MAX_EXPR_PARTS} are allowed",
                        parts.len()
                    ),
                )
                .at(span, "this expression is too long")
                .help("split it into `let` bindings"),
            );
            return None;
        }
        // Operands with their prefix operators, and the infix operators between them.
        let mut operands: Vec<Expr> = Vec::new();
        let mut ops: Vec<(BinOp, Span)> = Vec::new();
        let mut prefixes: Vec<(UnOp, Span)> = Vec::new();
        for part in parts {
            match part.as_rule() {
                Rule::neg => prefixes.push((UnOp::Neg, self.span(base, &part))),
                Rule::not => prefixes.push((UnOp::Not, self.span(base, &part))),
                Rule::postfix_expr => {
                    let mut e = self.postfix_expr(base, part)?;
                    while let Some((op, s)) = prefixes.pop() {
                        // Fold a negated number literal into the literal itself.
                        e = match (op, e.kind) {
                            (UnOp::Neg, ExprKind::Int { value, text }) => Expr {
                                kind: ExprKind::Int {
                                    value: -value,
                                    text: format!("-{text}"),
                                },
                                span: s.to(e.span),
                            },
                            (UnOp::Neg, ExprKind::Float { value, text }) => Expr {
                                kind: ExprKind::Float {
                                    value: -value,
                                    text: format!("-{text}"),
                                },
                                span: s.to(e.span),
                            },
                            (op, kind) => {
                                let inner = Expr { kind, span: e.span };
                                Expr {
                                    span: s.to(inner.span),
                                    kind: ExprKind::Unary {
                                        op,
                                        operand: Box::new(inner),
                                    },
                                }
                            }
                        };
                    }
                    operands.push(e);
                }
                r => {
                    let op = match r {
                        Rule::or => BinOp::Or,
                        Rule::and => BinOp::And,
                        Rule::eq => BinOp::Eq,
                        Rule::ne => BinOp::Ne,
                        Rule::lt => BinOp::Lt,
                        Rule::le => BinOp::Le,
                        Rule::gt => BinOp::Gt,
                        Rule::ge => BinOp::Ge,
                        Rule::add => BinOp::Add,
                        Rule::sub => BinOp::Sub,
                        Rule::mul => BinOp::Mul,
                        Rule::div => BinOp::Div,
                        _ => continue,
                    };
                    ops.push((op, self.span(base, &part)));
                }
            }
        }
        // Shunting-yard: all operators are left-associative.
        let mut out: Vec<Expr> = Vec::new();
        let mut stack: Vec<BinOp> = Vec::new();
        let mut operands = operands.into_iter();
        out.push(operands.next()?);
        for (op, _) in ops {
            while let Some(&top) = stack.last() {
                if top.precedence() >= op.precedence() {
                    stack.pop();
                    reduce(&mut out, top);
                } else {
                    break;
                }
            }
            stack.push(op);
            out.push(operands.next()?);
        }
        while let Some(top) = stack.pop() {
            reduce(&mut out, top);
        }
        out.pop()
    }

    fn postfix_expr(&mut self, base: usize, p: Pair<'_, Rule>) -> Option<Expr> {
        let steps = p.clone().into_inner().count().saturating_sub(1);
        if steps > MAX_EXPR_PARTS {
            self.diags.push(
                Diagnostic::error("E0003", format!("{steps} calls or member accesses in a row; at most {MAX_EXPR_PARTS} are allowed"))
                    .at(self.span(base, &p), "this chain is too long")
                    .help("split it into `let` bindings"),
            );
            return None;
        }
        if !self.enter(steps, base, &p) {
            return None;
        }
        let r = self.postfix_chain(base, p);
        self.tree_depth -= steps;
        r
    }

    fn postfix_chain(&mut self, base: usize, p: Pair<'_, Rule>) -> Option<Expr> {
        let mut it = p.into_inner();
        let mut e = self.primary(base, it.next()?)?;
        for post in it {
            let pspan = self.span(base, &post);
            let span = e.span.to(pspan);
            e = match post.as_rule() {
                Rule::call_args => {
                    let args = self.call_args(base, post);
                    Expr {
                        kind: ExprKind::Call {
                            callee: Box::new(e),
                            args,
                        },
                        span,
                    }
                }
                Rule::member => {
                    let name = self.ident(base, post.into_inner().next()?);
                    Expr {
                        kind: ExprKind::Member {
                            base: Box::new(e),
                            name,
                        },
                        span,
                    }
                }
                Rule::col_block => {
                    let cols = self.columns(base, post);
                    let block = Expr {
                        kind: ExprKind::Columns(cols),
                        span: pspan,
                    };
                    let arg = Arg {
                        name: None,
                        value: block,
                        span: pspan,
                    };
                    match e.kind {
                        // `derive(t) { .. }`: the block is the call's last argument.
                        ExprKind::Call { callee, mut args } => {
                            args.push(arg);
                            Expr {
                                kind: ExprKind::Call { callee, args },
                                span,
                            }
                        }
                        kind => {
                            let callee = Expr { kind, span: e.span };
                            Expr {
                                kind: ExprKind::Call {
                                    callee: Box::new(callee),
                                    args: vec![arg],
                                },
                                span,
                            }
                        }
                    }
                }
                _ => e,
            };
        }
        Some(e)
    }

    fn columns(&mut self, base: usize, p: Pair<'_, Rule>) -> Vec<(Ident, Expr)> {
        p.into_inner()
            .filter_map(|c| {
                let mut it = c.into_inner();
                let name = self.ident(base, it.next()?);
                let value = self.expr(base, it.next()?)?;
                Some((name, value))
            })
            .collect()
    }

    fn primary(&mut self, base: usize, p: Pair<'_, Rule>) -> Option<Expr> {
        let span = self.span(base, &p);
        let kind = match p.as_rule() {
            Rule::number => self.number(span, p.as_str()),
            Rule::quantity => {
                let mut it = p.into_inner();
                let num = it.next()?;
                let unit = it.next()?.as_str().to_string();
                let number = num.as_str().to_string();
                let value = number.replace('_', "").parse::<f64>().unwrap_or(f64::NAN);
                ExprKind::Quantity {
                    value,
                    number,
                    unit,
                }
            }
            Rule::string => {
                let body = p.into_inner().next().map(|b| b.as_str()).unwrap_or("");
                ExprKind::Str(self.unescape(body))
            }
            Rule::boolean => ExprKind::Bool(p.as_str() == "true"),
            Rule::ident => ExprKind::Ident(p.as_str().to_string()),
            Rule::list => {
                ExprKind::List(p.into_inner().filter_map(|e| self.expr(base, e)).collect())
            }
            Rule::record => ExprKind::Record(
                p.into_inner()
                    .filter_map(|f| {
                        let mut it = f.into_inner();
                        let name = self.ident(base, it.next()?);
                        let value = self.expr(base, it.next()?)?;
                        Some((name, value))
                    })
                    .collect(),
            ),
            Rule::paren => ExprKind::Paren(Box::new(self.expr(base, p.into_inner().next()?)?)),
            _ => return None,
        };
        Some(Expr { kind, span })
    }

    fn number(&mut self, span: Span, text: &str) -> ExprKind {
        let clean = text.replace('_', "");
        if clean.contains(['.', 'e', 'E']) {
            ExprKind::Float {
                value: clean.parse().unwrap_or(f64::NAN),
                text: text.to_string(),
            }
        } else {
            match clean.parse::<i64>() {
                Ok(value) => ExprKind::Int {
                    value,
                    text: text.to_string(),
                },
                Err(_) => {
                    self.diags.push(
                        Diagnostic::error("E0006", "integer literal out of range")
                            .at(span, "does not fit in a 64-bit signed integer")
                            .help(format!("the largest integer is {}", i64::MAX)),
                    );
                    ExprKind::Int {
                        value: 0,
                        text: text.to_string(),
                    }
                }
            }
        }
    }

    fn unescape(&mut self, body: &str) -> String {
        let mut out = String::with_capacity(body.len());
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('0') => out.push('\0'),
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('u') => {
                    let hex: String = chars.by_ref().skip(1).take_while(|&c| c != '}').collect();
                    // Invalid escapes were reported by the scanner.
                    if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        out.push(ch);
                    }
                }
                _ => {}
            }
        }
        out
    }
}

fn reduce(out: &mut Vec<Expr>, op: BinOp) {
    let rhs = out.pop().expect("two operands");
    let lhs = out.pop().expect("two operands");
    let span = lhs.span.to(rhs.span);
    out.push(Expr {
        kind: ExprKind::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
        span,
    });
}

fn join_or(items: &[&str]) -> String {
    match items.len() {
        0 => String::new(),
        1 => items[0].to_string(),
        n => format!("{} or {}", items[..n - 1].join(", "), items[n - 1]),
    }
}

fn only_comments(s: &str) -> bool {
    s.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with("//")
    })
}

/// Byte offset of the `{` that opens a pipeline body: the first `{` outside parentheses,
/// strings and comments.
fn find_body_open(chunk: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut it = Walker::new(chunk);
    while let Some((i, b)) = it.next_code() {
        match b {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth -= 1,
            b'{' if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

/// The `}` closing the `{` at `open`. Brackets are matched by kind, and a stray closer
/// that matches nothing open is skipped (the scanner reports it), so `let x = 1)` does
/// not end the pipeline early.
fn matching_close(chunk: &str, open: usize) -> Option<usize> {
    let mut stack: Vec<u8> = Vec::new();
    let mut it = Walker::new(chunk);
    it.i = open;
    while let Some((i, b)) = it.next_code() {
        match b {
            b'(' | b'[' | b'{' => stack.push(b),
            b')' | b']' | b'}' => {
                let want = match b {
                    b')' => b'(',
                    b']' => b'[',
                    _ => b'{',
                };
                if let Some(pos) = stack.iter().rposition(|&o| o == want) {
                    stack.truncate(pos);
                    if stack.is_empty() {
                        return Some(i);
                    }
                }
            }
            _ => {}
        }
        if stack.len() > MAX_NESTING * 2 {
            return None;
        }
    }
    None
}

/// Splits a pipeline body into statements: a statement starts where a line's first word
/// is `let`, `output`, `deploy` or `schedule` outside any bracket.
fn split_statements(body: &str) -> Vec<(usize, usize)> {
    let mut starts = vec![];
    let mut depth = 0i32;
    let mut it = Walker::new(body);
    let mut line_start = true;
    while let Some((i, b)) = it.next_code_with_newlines() {
        if b == b'\n' {
            line_start = true;
            continue;
        }
        if line_start && !b.is_ascii_whitespace() {
            line_start = false;
            let rest = &body[i..];
            let kw = ["let", "output", "deploy", "schedule"].iter().any(|k| {
                rest.starts_with(k)
                    && rest[k.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
            });
            // Statement keywords cannot appear inside an expression, so they start a new
            // statement even when an earlier one left a bracket open.
            if kw {
                if depth > 0 {
                    depth = 0;
                }
                starts.push(i);
            }
        }
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ => {}
        }
    }
    if starts.first() != Some(&0) {
        let first = starts.first().copied().unwrap_or(body.len());
        if !only_comments(&body[..first]) {
            starts.insert(0, 0);
        }
    }
    let mut out = vec![];
    for (k, &s) in starts.iter().enumerate() {
        out.push((s, starts.get(k + 1).copied().unwrap_or(body.len())));
    }
    out
}

/// Walks bytes outside strings and comments.
struct Walker<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Walker<'a> {
    fn new(s: &'a str) -> Self {
        Walker {
            b: s.as_bytes(),
            i: 0,
        }
    }
    fn next_code(&mut self) -> Option<(usize, u8)> {
        loop {
            let r = self.next_code_with_newlines()?;
            if r.1 != b'\n' {
                return Some(r);
            }
        }
    }
    fn next_code_with_newlines(&mut self) -> Option<(usize, u8)> {
        while self.i < self.b.len() {
            let i = self.i;
            let c = self.b[i];
            if c == b'/' && self.b.get(i + 1) == Some(&b'/') {
                while self.i < self.b.len() && self.b[self.i] != b'\n' {
                    self.i += 1;
                }
                continue;
            }
            if c == b'"' {
                self.i += 1;
                while self.i < self.b.len() && self.b[self.i] != b'"' && self.b[self.i] != b'\n' {
                    if self.b[self.i] == b'\\' {
                        self.i += 1;
                    }
                    self.i += 1;
                }
                self.i += 1;
                continue;
            }
            self.i += 1;
            return Some((i, c));
        }
        None
    }
}

/// The name an item would define, read from its first words (`fn name`, `pipeline name`).
fn item_name(chunk: &str) -> Option<String> {
    let mut words = chunk
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty());
    while let Some(w) = words.next() {
        if matches!(w, "fn" | "pipeline" | "op") {
            return words.next().map(String::from);
        }
    }
    None
}
