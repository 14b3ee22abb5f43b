//! The abstract syntax tree. Every node carries the byte span it was parsed from.
//! Comments are not in the tree: `File::comments` lists them with their spans, and
//! doc comments (`///`) are attached to the item, parameter or binding they precede.

pub use mlp_diagnostics::Span;

#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub items: Vec<Item>,
    /// Every `//` and `///` comment in source order.
    pub comments: Vec<Comment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    pub span: Span,
    /// The full comment text, including the leading slashes.
    pub text: String,
    pub doc: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub kind: ItemKind,
    pub attrs: Vec<Attr>,
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Attr {
    pub name: Ident,
    pub args: Vec<Arg>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ItemKind {
    Import(Import),
    Pipeline(Pipeline),
    Fn(FnDecl),
    Op(OpDecl),
}

impl Item {
    /// The name the item defines, if any (imports define names through their list).
    pub fn name(&self) -> Option<&Ident> {
        match &self.kind {
            ItemKind::Import(_) => None,
            ItemKind::Pipeline(p) => Some(&p.name),
            ItemKind::Fn(f) => Some(&f.name),
            ItemKind::Op(o) => Some(&o.name),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    /// `seismic` in `import seismic.{segy}`; `vector.hnsw` in `import vector.hnsw`.
    pub path: Vec<Ident>,
    /// The braced list, when present.
    pub names: Option<Vec<ImportName>>,
    /// `import vector.hnsw as h`.
    pub alias: Option<Ident>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ImportName {
    pub name: Ident,
    pub alias: Option<Ident>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    pub name: Ident,
    pub params: Vec<Param>,
    pub stmts: Vec<Stmt>,
    /// Span of the braced body.
    pub body: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FnDecl {
    pub name: Ident,
    pub generics: Vec<Ident>,
    pub params: Vec<Param>,
    pub ret: Option<TypeExpr>,
    /// `None` for built-in constructors declared in the standard library.
    pub body: Option<FnBody>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FnBody {
    pub lets: Vec<Let>,
    pub result: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OpDecl {
    pub name: Ident,
    pub generics: Vec<Ident>,
    pub params: Vec<Param>,
    pub ret: TypeExpr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub ty: TypeExpr,
    pub default: Option<Expr>,
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    Let(Let),
    Output {
        value: Expr,
        target: Expr,
        span: Span,
    },
    Deploy {
        value: Expr,
        span: Span,
    },
    Schedule {
        value: Expr,
        span: Span,
    },
}

impl Stmt {
    pub fn span(&self) -> Span {
        match self {
            Stmt::Let(l) => l.span,
            Stmt::Output { span, .. } | Stmt::Deploy { span, .. } | Stmt::Schedule { span, .. } => {
                *span
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Let {
    pub name: Ident,
    pub ty: Option<TypeExpr>,
    pub value: Expr,
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TypeExpr {
    /// `Int`, `Volume[il, xl, t]`, `Model[Traces[n, t] -> Embeddings[d]]`, `Table{date: Date}`.
    Named {
        name: Ident,
        dims: Option<Vec<DimArg>>,
        schema: Option<Vec<FieldType>>,
        span: Span,
    },
    /// `[Layer]`
    List { elem: Box<TypeExpr>, span: Span },
    /// `{name: Str, size: Int}`
    Record { fields: Vec<FieldType>, span: Span },
}

impl TypeExpr {
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Named { span, .. }
            | TypeExpr::List { span, .. }
            | TypeExpr::Record { span, .. } => *span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct FieldType {
    pub name: Ident,
    pub ty: TypeExpr,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DimArg {
    Int(i64, Span),
    /// `_`: any size.
    Hole(Span),
    /// A symbolic dimension (`n`) or a type argument (`Traces[n, t]`).
    Type(TypeExpr),
    /// `A -> B`, as in `Model[A -> B]`.
    Arrow(Box<DimArg>, Box<DimArg>, Span),
}

impl DimArg {
    pub fn span(&self) -> Span {
        match self {
            DimArg::Int(_, s) | DimArg::Hole(s) | DimArg::Arrow(_, _, s) => *s,
            DimArg::Type(t) => t.span(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }
    /// Binding power: higher binds tighter.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And => 2,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div => 5,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// An integer literal; `text` is the source spelling (kept for the formatter).
    Int {
        value: i64,
        text: String,
    },
    Float {
        value: f64,
        text: String,
    },
    /// `4 ms`, `100/s`, `10 %`, `16 GiB`: a number with a unit.
    Quantity {
        value: f64,
        number: String,
        unit: String,
    },
    Str(String),
    Bool(bool),
    Ident(String),
    List(Vec<Expr>),
    Record(Vec<(Ident, Expr)>),
    /// `{ r = steel / lag(steel, 12) }`: column definitions, evaluated per row.
    Columns(Vec<(Ident, Expr)>),
    Call {
        callee: Box<Expr>,
        args: Vec<Arg>,
    },
    Member {
        base: Box<Expr>,
        name: Ident,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Unary {
        op: UnOp,
        operand: Box<Expr>,
    },
    Paren(Box<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}
