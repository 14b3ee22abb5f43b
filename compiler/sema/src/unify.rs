//! Unification of types and dimensions, with substitution tables owned by the checker.

use crate::types::{Dim, Ty, TyDisplay};
use mlp_diagnostics::Span;
use std::collections::HashMap;

#[derive(Default)]
pub struct Subst {
    tys: Vec<Option<Ty>>,
    dims: Vec<Option<Dim>>,
    /// Symbol a variable came from (`n`, `d`, `T`), for messages and plan types.
    ty_names: HashMap<u32, String>,
    dim_names: HashMap<u32, String>,
    /// Where a dimension variable got its value, for "bound here" labels.
    pub dim_origin: HashMap<u32, Span>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mismatch {
    General,
    /// A quantity where something else was expected, or the other way round.
    Quantity,
    /// Dimension `index` of a domain type differs.
    Dim {
        index: usize,
        expected: Dim,
        found: Dim,
    },
    /// A secret where something else was expected.
    Secret,
    /// A column required by the expected table is missing.
    Column(String),
}

impl Subst {
    pub fn fresh_ty(&mut self, name: &str) -> Ty {
        let id = self.tys.len() as u32;
        self.tys.push(None);
        self.ty_names.insert(id, name.to_string());
        Ty::Var(id)
    }
    pub fn fresh_dim(&mut self, name: &str) -> Dim {
        let id = self.dims.len() as u32;
        self.dims.push(None);
        self.dim_names.insert(id, name.to_string());
        Dim::Var(id)
    }

    pub fn dim(&self, d: Dim) -> Dim {
        let mut d = d;
        while let Dim::Var(v) = d {
            match self.dims.get(v as usize).copied().flatten() {
                Some(next) => d = next,
                None => break,
            }
        }
        d
    }

    /// What a dimension variable is bound to directly (one step), or `Any` if unbound.
    pub fn dim_bound(&self, v: u32) -> Dim {
        self.dims
            .get(v as usize)
            .copied()
            .flatten()
            .unwrap_or(Dim::Any)
    }

    pub fn shallow(&self, t: &Ty) -> Ty {
        let mut t = t.clone();
        while let Ty::Var(v) = t {
            match self.tys.get(v as usize).cloned().flatten() {
                Some(next) => t = next,
                None => break,
            }
        }
        t
    }

    /// The type with every bound variable replaced.
    pub fn resolve(&self, t: &Ty) -> Ty {
        match self.shallow(t) {
            Ty::List(e) => Ty::List(Box::new(self.resolve(&e))),
            Ty::Record(fs) => Ty::Record(
                fs.iter()
                    .map(|(n, t)| (n.clone(), self.resolve(t)))
                    .collect(),
            ),
            Ty::Table(Some(fs)) => Ty::Table(Some(
                fs.iter()
                    .map(|(n, t)| (n.clone(), self.resolve(t)))
                    .collect(),
            )),
            Ty::Domain(n, ds) => Ty::Domain(n, ds.iter().map(|d| self.dim(*d)).collect()),
            Ty::Arrow(n, a, b) => {
                Ty::Arrow(n, Box::new(self.resolve(&a)), Box::new(self.resolve(&b)))
            }
            other => other,
        }
    }

    pub fn show(&self, t: &Ty) -> String {
        let r = self.resolve(t);
        let names = |v: u32| self.dim_names.get(&v).cloned();
        let tnames = |v: u32| self.ty_names.get(&v).cloned();
        // Dims and type variables live in separate tables; print type variables by name.
        let s = TyDisplay {
            ty: &r,
            dim_name: &names,
        }
        .to_string();
        if let Ty::Var(v) = r {
            return tnames(v).unwrap_or(s);
        }
        s
    }

    pub fn show_dim(&self, d: Dim) -> String {
        match self.dim(d) {
            Dim::Const(c) => c.to_string(),
            Dim::Any => "_".into(),
            Dim::Var(v) => self
                .dim_names
                .get(&v)
                .cloned()
                .unwrap_or_else(|| "?".into()),
        }
    }

    pub fn unify_dim(&mut self, expected: Dim, found: Dim, at: Span) -> bool {
        let (e, f) = (self.dim(expected), self.dim(found));
        match (e, f) {
            (Dim::Any, _) | (_, Dim::Any) => true,
            (Dim::Const(a), Dim::Const(b)) => a == b,
            (Dim::Var(a), Dim::Var(b)) if a == b => true,
            (Dim::Var(a), other) => {
                self.dims[a as usize] = Some(other);
                if !at.is_empty() {
                    self.dim_origin.entry(a).or_insert(at);
                }
                true
            }
            (other, Dim::Var(b)) => {
                self.dims[b as usize] = Some(other);
                if !at.is_empty() {
                    self.dim_origin.entry(b).or_insert(at);
                }
                true
            }
        }
    }

    /// Makes `found` fit `expected`, binding variables on either side.
    pub fn unify(&mut self, expected: &Ty, found: &Ty, at: Span) -> Result<(), Mismatch> {
        let e = self.shallow(expected);
        let f = self.shallow(found);
        match (&e, &f) {
            (Ty::Unknown, _) | (_, Ty::Unknown) => Ok(()),
            (Ty::Var(a), Ty::Var(b)) if a == b => Ok(()),
            (Ty::Var(a), _) => {
                self.tys[*a as usize] = Some(f.clone());
                Ok(())
            }
            (_, Ty::Var(b)) => {
                self.tys[*b as usize] = Some(e.clone());
                Ok(())
            }
            (Ty::Named(n), _) if n == "Any" => {
                if f.contains_secret() {
                    Err(Mismatch::Secret)
                } else {
                    Ok(())
                }
            }
            (Ty::Secret, Ty::Secret) => Ok(()),
            (_, Ty::Secret) => Err(Mismatch::Secret),
            (Ty::Float, Ty::Int) => Ok(()),
            // A string literal can name a path; a path is not text (it is resolved, hashed by
            // content, shipped to workers), so it does not flow into `Str`.
            (Ty::Path, Ty::Str) => Ok(()),
            (Ty::Quantity(a), Ty::Quantity(b)) if a == b => Ok(()),
            (Ty::Quantity(_), _) | (_, Ty::Quantity(_)) => Err(Mismatch::Quantity),
            (Ty::List(a), Ty::List(b)) => self.unify(a, b, at),
            (Ty::Record(fa), Ty::Record(fb)) => {
                if fa.len() != fb.len() || fa.iter().any(|(n, _)| !fb.iter().any(|(m, _)| m == n)) {
                    return Err(Mismatch::General);
                }
                for (n, t) in fa {
                    let u = fb
                        .iter()
                        .find(|(m, _)| m == n)
                        .map(|(_, u)| u.clone())
                        .unwrap_or(Ty::Unknown);
                    self.unify(t, &u, at)?;
                }
                Ok(())
            }
            (Ty::Table(None), Ty::Table(_)) | (Ty::Table(_), Ty::Table(None)) => Ok(()),
            (Ty::Table(Some(want)), Ty::Table(Some(have))) => {
                for (n, t) in want {
                    match have.iter().find(|(m, _)| m == n) {
                        Some((_, u)) => {
                            let u = u.clone();
                            self.unify(t, &u, at)?
                        }
                        None => return Err(Mismatch::Column(n.clone())),
                    }
                }
                Ok(())
            }
            (Ty::Domain(a, da), Ty::Domain(b, db)) if a == b => {
                if a == "Tensor" && (da.is_empty() || db.is_empty()) {
                    return Ok(());
                }
                if da.len() != db.len() {
                    return Err(Mismatch::General);
                }
                for (i, (x, y)) in da.iter().zip(db.iter()).enumerate() {
                    if !self.unify_dim(*x, *y, at) {
                        return Err(Mismatch::Dim {
                            index: i,
                            expected: *x,
                            found: *y,
                        });
                    }
                }
                Ok(())
            }
            (Ty::Arrow(a, ia, oa), Ty::Arrow(b, ib, ob)) if a == b => {
                self.unify(ia, ib, at)?;
                self.unify(oa, ob, at)
            }
            (Ty::Named(a), Ty::Named(b)) if a == b => Ok(()),
            (Ty::Columns, Ty::Columns) => Ok(()),
            (a, b)
                if a == b
                    && matches!(
                        a,
                        Ty::Int | Ty::Float | Ty::Bool | Ty::Str | Ty::Path | Ty::Date
                    ) =>
            {
                Ok(())
            }
            _ => Err(Mismatch::General),
        }
    }
}
