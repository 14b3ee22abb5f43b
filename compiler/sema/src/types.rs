//! Types of mlp values. Dimensioned domain types carry symbolic or constant dimensions that
//! unify across calls; quantities carry their physical kind so a duration is never a count.

use std::fmt;

/// The kind of a quantity literal. Two quantities of different kinds never unify, and no
/// quantity unifies with `Int` or `Float`: `20 d` is not `20`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QKind {
    Duration,
    Bytes,
    TextSize,
    Rate,
    Percent,
    Frequency,
    Length,
}

impl QKind {
    pub fn name(self) -> &'static str {
        match self {
            QKind::Duration => "Duration",
            QKind::Bytes => "Bytes",
            QKind::TextSize => "TextSize",
            QKind::Rate => "Rate",
            QKind::Percent => "Percent",
            QKind::Frequency => "Frequency",
            QKind::Length => "Length",
        }
    }
    /// The plan's name for the quantity (spec/plan.md).
    pub fn plan_name(self) -> &'static str {
        match self {
            QKind::Duration => "duration",
            QKind::Bytes => "bytes",
            QKind::TextSize => "text_size",
            QKind::Rate => "rate",
            QKind::Percent => "percent",
            QKind::Frequency => "frequency",
            QKind::Length => "length",
        }
    }
    pub fn from_name(name: &str) -> Option<QKind> {
        Some(match name {
            "Duration" => QKind::Duration,
            "Bytes" => QKind::Bytes,
            "TextSize" => QKind::TextSize,
            "Rate" => QKind::Rate,
            "Percent" => QKind::Percent,
            "Frequency" => QKind::Frequency,
            "Length" => QKind::Length,
            _ => return None,
        })
    }
    /// Units of this kind, for help messages.
    pub fn example(self) -> &'static str {
        match self {
            QKind::Duration => "`500 ms`, `30 d`",
            QKind::Bytes => "`16 GiB`",
            QKind::TextSize => "`256 tokens`, `1000 chars`",
            QKind::Rate => "`100/s`",
            QKind::Percent => "`10 %`",
            QKind::Frequency => "`25 Hz`",
            QKind::Length => "`12.5 m`",
        }
    }
}

/// A literal unit: its kind, its factor to the SI base unit of the kind, and the base unit's name.
pub fn unit_info(unit: &str) -> Option<(QKind, f64, &'static str)> {
    use QKind::*;
    Some(match unit {
        "ns" => (Duration, 1e-9, "s"),
        "us" => (Duration, 1e-6, "s"),
        "ms" => (Duration, 1e-3, "s"),
        "s" => (Duration, 1.0, "s"),
        "min" => (Duration, 60.0, "s"),
        "h" => (Duration, 3600.0, "s"),
        "d" => (Duration, 86400.0, "s"),
        "w" => (Duration, 604800.0, "s"),
        "B" | "bytes" => (Bytes, 1.0, "bytes"),
        "KB" => (Bytes, 1e3, "bytes"),
        "MB" => (Bytes, 1e6, "bytes"),
        "GB" => (Bytes, 1e9, "bytes"),
        "TB" => (Bytes, 1e12, "bytes"),
        "KiB" => (Bytes, 1024.0, "bytes"),
        "MiB" => (Bytes, 1048576.0, "bytes"),
        "GiB" => (Bytes, 1073741824.0, "bytes"),
        "TiB" => (Bytes, 1099511627776.0, "bytes"),
        "tokens" | "token" => (TextSize, 1.0, "tokens"),
        "chars" | "char" => (TextSize, 1.0, "chars"),
        "/ms" => (Rate, 1e3, "/s"),
        "/s" => (Rate, 1.0, "/s"),
        "/min" => (Rate, 1.0 / 60.0, "/s"),
        "/h" => (Rate, 1.0 / 3600.0, "/s"),
        "/d" => (Rate, 1.0 / 86400.0, "/s"),
        "/w" => (Rate, 1.0 / 604800.0, "/s"),
        "%" => (Percent, 0.01, "fraction"),
        "Hz" => (Frequency, 1.0, "Hz"),
        "kHz" => (Frequency, 1e3, "Hz"),
        "m" => (Length, 1.0, "m"),
        "km" => (Length, 1e3, "m"),
        "ft" => (Length, 0.3048, "m"),
        _ => return None,
    })
}

/// One dimension of a domain type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    Const(i64),
    /// A unification variable; `name` is the symbol it came from, for messages.
    Var(u32),
    /// `_`: any size, never constrains.
    Any,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    Int,
    Float,
    Bool,
    Str,
    Path,
    Date,
    Secret,
    Quantity(QKind),
    List(Box<Ty>),
    Record(Vec<(String, Ty)>),
    /// A table; `None` while its schema is unknown (a source not yet annotated).
    Table(Option<Vec<(String, Ty)>>),
    /// `Volume[il, xl, t]`, `Traces[n, t]`, `Tensor[c, h, w]`, `Embeddings[d]`, `Index[d]`, `Embedder[d]`.
    Domain(String, Vec<Dim>),
    /// `Model[A -> B]`, `Trained[A -> B]`.
    Arrow(String, Box<Ty>, Box<Ty>),
    /// Types without parameters: `Layer`, `Docs`, `Chunks`, `Series`, `Endpoint`, ...
    Named(String),
    /// A column block `{ r = a / b }`, only valid as an argument of `derive`.
    Columns,
    /// A generic type variable.
    Var(u32),
    /// The type of an expression that already produced an error: unifies with anything, so
    /// one mistake gives one diagnostic.
    Unknown,
}

/// Domain types and how many dimensions they take (`None`: any number).
pub fn domain_arity(name: &str) -> Option<Option<usize>> {
    Some(match name {
        "Volume" => Some(3),
        "Traces" => Some(2),
        "Tensor" => None,
        "Embeddings" | "Index" | "Embedder" => Some(1),
        _ => return None,
    })
}

pub const ARROW_TYPES: &[&str] = &["Model", "Trained"];

/// Parameterless named types known to the checker. Config types are compile-time values.
pub const CONFIG_TYPES: &[&str] = &[
    "Layer",
    "Optimizer",
    "Loss",
    "Metric",
    "Schedule",
    "Chunker",
    "Forecaster",
    "Auth",
    "Strategy",
    "Tracker",
];
pub const RUNTIME_TYPES: &[&str] = &[
    "Docs",
    "Chunks",
    "Series",
    "Forecast",
    "Endpoint",
    "Metrics",
    "Retrieved",
    "Report",
    "Any",
];

pub const PRIMITIVES: &[&str] = &["Int", "Float", "Bool", "Str", "Path", "Date", "Secret"];

impl Ty {
    /// Whether a value of this type is a compile-time configuration value (evaluated by the
    /// compiler) rather than something computed at run time.
    pub fn is_config(&self) -> bool {
        match self {
            Ty::Named(n) => CONFIG_TYPES.contains(&n.as_str()),
            Ty::Domain(n, _) => n == "Embedder",
            Ty::Arrow(n, _, _) => n == "Model",
            Ty::List(t) => t.is_config(),
            _ => false,
        }
    }
    /// Whether a Secret hides anywhere inside this type.
    pub fn contains_secret(&self) -> bool {
        match self {
            Ty::Secret => true,
            Ty::List(t) => t.contains_secret(),
            Ty::Record(fs) => fs.iter().any(|(_, t)| t.contains_secret()),
            _ => false,
        }
    }
}

/// Prints a type with its variables as resolved so far; unresolved dims print as `?`
/// or with the symbol they came from.
pub struct TyDisplay<'a> {
    pub ty: &'a Ty,
    pub dim_name: &'a dyn Fn(u32) -> Option<String>,
}

impl fmt::Display for TyDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_ty(f, self.ty, self.dim_name)
    }
}

fn write_dim(
    f: &mut fmt::Formatter<'_>,
    d: &Dim,
    names: &dyn Fn(u32) -> Option<String>,
) -> fmt::Result {
    match d {
        Dim::Const(c) => write!(f, "{c}"),
        Dim::Any => write!(f, "_"),
        Dim::Var(v) => write!(f, "{}", names(*v).unwrap_or_else(|| "?".into())),
    }
}

fn write_fields(
    f: &mut fmt::Formatter<'_>,
    fs: &[(String, Ty)],
    names: &dyn Fn(u32) -> Option<String>,
) -> fmt::Result {
    write!(f, "{{")?;
    for (i, (n, t)) in fs.iter().enumerate() {
        if i > 0 {
            write!(f, ", ")?;
        }
        write!(f, "{n}: ")?;
        write_ty(f, t, names)?;
    }
    write!(f, "}}")
}

fn write_ty(
    f: &mut fmt::Formatter<'_>,
    t: &Ty,
    names: &dyn Fn(u32) -> Option<String>,
) -> fmt::Result {
    match t {
        Ty::Int => write!(f, "Int"),
        Ty::Float => write!(f, "Float"),
        Ty::Bool => write!(f, "Bool"),
        Ty::Str => write!(f, "Str"),
        Ty::Path => write!(f, "Path"),
        Ty::Date => write!(f, "Date"),
        Ty::Secret => write!(f, "Secret"),
        Ty::Quantity(q) => write!(f, "{}", q.name()),
        Ty::List(e) => {
            write!(f, "[")?;
            write_ty(f, e, names)?;
            write!(f, "]")
        }
        Ty::Record(fs) => write_fields(f, fs, names),
        Ty::Table(None) => write!(f, "Table{{..}}"),
        Ty::Table(Some(fs)) => {
            write!(f, "Table")?;
            write_fields(f, fs, names)
        }
        Ty::Domain(n, dims) => {
            write!(f, "{n}[")?;
            for (i, d) in dims.iter().enumerate() {
                if i > 0 {
                    write!(f, ", ")?;
                }
                write_dim(f, d, names)?;
            }
            write!(f, "]")
        }
        Ty::Arrow(n, a, b) => {
            write!(f, "{n}[")?;
            write_ty(f, a, names)?;
            write!(f, " -> ")?;
            write_ty(f, b, names)?;
            write!(f, "]")
        }
        Ty::Named(n) => write!(f, "{n}"),
        Ty::Columns => write!(f, "Columns"),
        Ty::Var(v) => write!(f, "{}", names(*v).unwrap_or_else(|| "?".into())),
        Ty::Unknown => write!(f, "?"),
    }
}
