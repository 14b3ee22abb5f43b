//! Built-in rules that signatures alone cannot express: shape inference through layer
//! stacks and U-Nets, column checking in tables, and validation of constant arguments.

use crate::check::{Checker, Typed};

use crate::eval::Bound;
use crate::hir::Val;
use crate::prelude::Decl;
use crate::types::*;
use mlp_diagnostics::{did_you_mean, Diagnostic, Span};
use mlp_syntax::ast::{self, Expr, ExprKind};
use serde_json::{json, Value};

/// The shape of one sample flowing through a layer stack.
#[derive(Clone, Debug)]
enum Shape {
    /// A feature vector (a trace, an embedding): its length.
    Vec(Dim),
    /// An image: channels, height, width.
    Image(Dim, Dim, Dim),
}

impl<'a> Checker<'a> {
    /// Refines the result type of a call, or reports a problem. `None`: no rule for this
    /// declaration; `Some(Err(()))`: an error was reported.
    pub(crate) fn intrinsic(
        &mut self,
        decl: &Decl,
        bound: &[Bound],
        _param_tys: &[Ty],
        ret: Ty,
        columns: Option<&Expr>,
        span: Span,
    ) -> Option<Result<Ty, ()>> {
        let arg = |name: &str| {
            decl.params
                .iter()
                .position(|p| p.name.name == name)
                .map(|i| &bound[i])
        };
        let int = |name: &str| arg(name).and_then(|b| b.t.val.as_i64());
        let q = decl.qualified();
        match q.as_str() {
            "core.secret" => {
                let b = arg("name")?;
                match b.t.val.as_str() {
                    Some(s) if valid_secret_name(s) => None,
                    Some(s) => {
                        self.diags.push(
                            Diagnostic::error("E0210", format!("`{s}` is not a valid secret name"))
                                .at(b.span, "invalid name")
                                .help("secret names are letters, digits, `_`, `-`, `.` and `/`, not starting with a digit (e.g. `API_TOKEN`, `prod/db-password`)"),
                        );
                        Some(Err(()))
                    }
                    None => None,
                }
            }
            "nn.dense" | "nn.conv2d" | "nn.conv_transpose2d" | "nn.maxpool" | "nn.upsample" => {
                for name in ["units", "filters", "kernel", "stride", "size", "factor"] {
                    if let (Some(v), Some(b)) = (int(name), arg(name)) {
                        if v <= 0 {
                            return Some(self.positive(name, v, b.span));
                        }
                    }
                }
                if let Some(b) = arg("padding") {
                    if let Some(p) = b.t.val.as_str() {
                        if p != "same" && p != "valid" {
                            self.diags.push(
                                Diagnostic::error("E0210", format!("unknown padding `{p}`"))
                                    .at(b.span, "expected \"same\" or \"valid\""),
                            );
                            return Some(Err(()));
                        }
                    }
                }
                None
            }
            "core.every" => {
                let b = arg("period")?;
                let secs = b.t.val.as_const()?.get("value")?.as_f64()?;
                if secs < 60.0 {
                    self.diags.push(
                        Diagnostic::error("E0210", "a schedule period must be at least 1 min")
                            .at(b.span, "too short")
                            .help("use `every(1 min)` or longer; for continuous work deploy an endpoint instead"),
                    );
                    return Some(Err(()));
                }
                None
            }
            "core.cron" => {
                let b = arg("expr")?;
                let e = b.t.val.as_str()?;
                if let Err(msg) = check_cron(e) {
                    self.diags.push(
                        Diagnostic::error("E0210", format!("invalid cron expression `{e}`: {msg}"))
                            .at(b.span, "invalid cron expression")
                            .help("write minute hour day-of-month month day-of-week, e.g. \"0 6 1 * *\""),
                    );
                    return Some(Err(()));
                }
                let tz = arg("timezone")?;
                if let Some(z) = tz.t.val.as_str() {
                    let ok = z == "UTC"
                        || (z.contains('/')
                            && z.split('/').all(|p| {
                                !p.is_empty()
                                    && p.chars()
                                        .all(|c| c.is_ascii_alphanumeric() || "_-+".contains(c))
                            }));
                    if !ok {
                        self.diags.push(
                            Diagnostic::error(
                                "E0210",
                                format!("`{z}` is not an IANA time zone name"),
                            )
                            .at(tz.span, "expected Area/City")
                            .help("write e.g. \"UTC\" or \"Europe/Berlin\""),
                        );
                        return Some(Err(()));
                    }
                }
                None
            }
            "text.fixed"
            | "text.recursive"
            | "text.sentences"
            | "text.markdown_sections"
            | "text.tokens" => {
                let size = arg("size")?;
                let overlap = arg("overlap")?;
                let (Some(s), Some(o)) = (size.t.val.as_const(), overlap.t.val.as_const()) else {
                    return None;
                };
                let (su, ou) = (s.get("unit")?.as_str()?, o.get("unit")?.as_str()?);
                let (sv, ov) = (s.get("value")?.as_f64()?, o.get("value")?.as_f64()?);
                if decl.name == "tokens" && su != "tokens" {
                    self.diags.push(
                        Diagnostic::error("E0202", format!("a token chunker's size is in tokens, found {su}"))
                            .at(size.span, format!("in {su}"))
                            .help("write the size in tokens, e.g. `256 tokens`; use `fixed` or `recursive` to count characters"),
                    );
                    return Some(Err(()));
                }
                if su != ou {
                    // Point at what the user wrote; a default's span is the whole call.
                    let mut d = Diagnostic::error(
                        "E0202",
                        format!("size is in {su} but overlap is in {ou}"),
                    );
                    d = if overlap.default {
                        d.at(
                            size.span,
                            format!("in {su}; the default overlap is in {ou}"),
                        )
                    } else if size.default {
                        d.at(
                            overlap.span,
                            format!("in {ou}; the default size is in {su}"),
                        )
                    } else {
                        d.at(overlap.span, format!("in {ou}"))
                            .also(size.span, format!("in {su}"))
                    };
                    self.diags.push(d.help(format!("give both in {su}")));
                    return Some(Err(()));
                }
                if sv < 1.0 {
                    return Some(self.positive("size", sv as i64, size.span));
                }
                if ov < 0.0 || ov >= sv {
                    self.diags.push(
                        Diagnostic::error("E0210", format!("overlap ({ov} {ou}) must be at least 0 and smaller than the size ({sv} {su})"))
                            .at(overlap.span, "overlap out of range"),
                    );
                    return Some(Err(()));
                }
                None
            }
            "nn.dropout" => {
                let b = arg("rate")?;
                let r = b.t.val.as_const().and_then(|v| v.as_f64())?;
                if !(0.0..1.0).contains(&r) {
                    self.diags.push(
                        Diagnostic::error("E0210", format!("dropout rate {r} is outside [0, 1)"))
                            .at(b.span, "out of range"),
                    );
                    return Some(Err(()));
                }
                None
            }
            "nn.unet" => {
                for name in ["depth", "base", "classes", "in_channels"] {
                    if let (Some(v), Some(b)) = (int(name), arg(name)) {
                        if v <= 0 {
                            return Some(self.positive(name, v, b.span));
                        }
                    }
                }
                if let (Some(d), Some(b)) = (int("depth"), arg("depth")) {
                    if d > 8 {
                        self.diags.push(
                            Diagnostic::error(
                                "E0210",
                                format!(
                                    "a U-Net of depth {d} is deeper than supported (at most 8)"
                                ),
                            )
                            .at(b.span, "too deep"),
                        );
                        return Some(Err(()));
                    }
                }
                let cfg = self.config_json(decl, bound)?;
                Some(self.model_type(&cfg, span))
            }
            "nn.sequential" | "nn.autoencoder" => {
                let cfg = self.config_json(decl, bound)?;
                Some(self.model_type(&cfg, span))
            }
            "nn.train" | "nn.train_supervised" => {
                let model = arg("model")?;
                let data = arg("on")?;
                let Val::Const(cfg) = &model.t.val else {
                    return None;
                };
                let cfg = cfg.clone();
                let Some((a, b)) = self.apply_model(&cfg, &model.t, data, span) else {
                    return Some(Err(()));
                };
                if let Some(labels) = arg("labels") {
                    if self.sub.unify(&b, &labels.t.ty, labels.span).is_err() {
                        let d = self
                            .mismatch(
                                &b,
                                &labels.t.ty,
                                crate::unify::Mismatch::General,
                                labels.span,
                                "the labels argument",
                            )
                            .also(data.span, "the model's output for this input");
                        let d = Diagnostic {
                            code: "E0204".into(),
                            message: format!(
                                "labels do not match the model's output: expected `{}`, found `{}`",
                                self.sub.show(&b),
                                self.sub.show(&labels.t.ty)
                            ),
                            ..d
                        };
                        self.diags.push(d);
                        return Some(Err(()));
                    }
                }
                let a = self.sub.resolve(&a);
                let b = self.sub.resolve(&b);
                for epochs in ["epochs", "batch"] {
                    if let (Some(v), Some(bb)) = (int(epochs), arg(epochs)) {
                        if v <= 0 {
                            return Some(self.positive(epochs, v, bb.span));
                        }
                    }
                }
                let _ = ret;
                Some(Ok(Ty::Arrow("Trained".into(), Box::new(a), Box::new(b))))
            }
            "nn.predict" | "nn.encode" => {
                let model = arg("self")?;
                let x = arg("x")?;
                let cfg = match &model.t.val {
                    Val::Node(id) => self.model_of_node.get(id).cloned(),
                    _ => None,
                };
                let Some(cfg) = cfg else {
                    // A trained model from elsewhere (a checkpoint): use its declared type.
                    return match self.sub.shallow(&model.t.ty) {
                        Ty::Arrow(_, a, b) => {
                            if let Err(m) = self.sub.unify(&a, &x.t.ty, x.span) {
                                let d = self.mismatch(&a, &x.t.ty, m, x.span, "the model's input");
                                self.diags.push(d);
                                return Some(Err(()));
                            }
                            Some(Ok(*b))
                        }
                        _ => None,
                    };
                };
                let is_ae = cfg.get("fn").and_then(|f| f.as_str()) == Some("nn.autoencoder");
                if decl.name == "encode" && !is_ae {
                    self.diags.push(
                        Diagnostic::error("E0208", "`encode` needs an autoencoder")
                            .at(span, "this model is not an autoencoder")
                            .help("use `predict` for other models"),
                    );
                    return Some(Err(()));
                }
                let Some((a, b)) = self.apply_model(&cfg, &model.t, x, span) else {
                    return Some(Err(()));
                };
                Some(Ok(self.sub.resolve(if decl.name == "predict" && is_ae {
                    &a
                } else {
                    &b
                })))
            }
            "table.derive" => Some(self.derive(decl, bound, columns, span)),
            "table.series" | "table.select" => Some(self.column_args(decl, bound, ret)),
            _ => None,
        }
    }

    fn positive(&mut self, name: &str, v: i64, at: Span) -> Result<Ty, ()> {
        self.diags.push(
            Diagnostic::error("E0210", format!("`{name}` must be positive, found {v}"))
                .at(at, "not positive")
                .help(format!("give `{name}` a value of at least 1")),
        );
        Err(())
    }

    /// The configuration value a built-in call will produce (for rules that need it early).
    fn config_json(&self, decl: &Decl, bound: &[Bound]) -> Option<Value> {
        let mut args = serde_json::Map::new();
        for (p, b) in decl.params.iter().zip(bound) {
            args.insert(p.name.name.clone(), b.t.val.as_const()?.clone());
        }
        Some(json!({"fn": decl.qualified(), "args": Value::Object(args)}))
    }

    /// The type of a model built from its configuration, with a symbolic input.
    fn model_type(&mut self, cfg: &Value, span: Span) -> Result<Ty, ()> {
        let input = self.symbolic_input(cfg);
        match self.model_io(cfg, &input) {
            Ok(out) => Ok(Ty::Arrow("Model".into(), Box::new(input), Box::new(out))),
            Err((msg, help)) => {
                let mut d = Diagnostic::error("E0205", msg).at(span, "in this model");
                if let Some(h) = help {
                    d = d.help(h);
                }
                self.diags.push(d);
                Err(())
            }
        }
    }

    fn symbolic_input(&mut self, cfg: &Value) -> Ty {
        let f = cfg.get("fn").and_then(|v| v.as_str()).unwrap_or("");
        let args = &cfg["args"];
        let image = match f {
            "nn.unet" => true,
            _ => {
                let layers = args
                    .get("layers")
                    .or_else(|| args.get("encoder"))
                    .and_then(|l| l.as_array());
                layers
                    .and_then(|ls| {
                        ls.iter()
                            .find_map(|l| match l.get("fn").and_then(|v| v.as_str()) {
                                Some("nn.dense") => Some(false),
                                Some(
                                    "nn.conv2d"
                                    | "nn.maxpool"
                                    | "nn.upsample"
                                    | "nn.conv_transpose2d"
                                    | "nn.flatten",
                                ) => Some(true),
                                _ => None,
                            })
                    })
                    .unwrap_or(false)
            }
        };
        if image {
            let c = match (f, args.get("in_channels").and_then(|v| v.as_i64())) {
                ("nn.unet", Some(c)) => Dim::Const(c),
                _ => self.sub.fresh_dim("c"),
            };
            Ty::Domain(
                "Tensor".into(),
                vec![c, self.sub.fresh_dim("h"), self.sub.fresh_dim("w")],
            )
        } else {
            Ty::Domain(
                "Traces".into(),
                vec![self.sub.fresh_dim("n"), self.sub.fresh_dim("t")],
            )
        }
    }

    /// Unifies a model's input with the data it is applied to, then infers the output
    /// with the concrete sizes. Reports and returns `None` on error.
    fn apply_model(
        &mut self,
        cfg: &Value,
        model: &Typed,
        data: &Bound,
        span: Span,
    ) -> Option<(Ty, Ty)> {
        let declared_in = match self.sub.shallow(&model.ty) {
            Ty::Arrow(_, a, _) => *a,
            _ => self.symbolic_input(cfg),
        };
        let data_ty = self.sub.resolve(&data.t.ty);
        if matches!(data_ty, Ty::Unknown) {
            return None;
        }
        // Embeddings feed vector models as well as traces do.
        let data_as_input = match (&declared_in, &data_ty) {
            (Ty::Domain(a, _), Ty::Domain(b, d)) if a == "Traces" && b == "Embeddings" => {
                Ty::Domain("Traces".into(), vec![Dim::Any, d[0]])
            }
            _ => data_ty.clone(),
        };
        // Layer stacks take their input kind from the data (their declared input was
        // symbolic), so a mismatch is reported by the layer that cannot take it.
        let stack = matches!(
            cfg.get("fn").and_then(|f| f.as_str()),
            Some("nn.sequential" | "nn.autoencoder")
        );
        let kinds_differ = !matches!((&declared_in, &data_as_input), (Ty::Domain(a, _), Ty::Domain(b, _)) if a == b);
        if stack && kinds_differ && matches!(data_as_input, Ty::Domain(..)) {
            // fall through to the shape rules with the data's own type
        } else if let Err(m) = self.sub.unify(&declared_in, &data_as_input, data.span) {
            let d = self
                .mismatch(&declared_in, &data_ty, m, data.span, "the model's input")
                .also(model.origin, "the model");
            self.diags.push(d);
            return None;
        }
        let input = self.sub.resolve(&data_as_input);
        match self.model_io(cfg, &input) {
            Ok(out) => Some((input, out)),
            Err((msg, help)) => {
                let mut d = Diagnostic::error("E0205", msg)
                    .at(
                        data.span,
                        format!("the input is `{}`", self.sub.show(&input)),
                    )
                    .also(model.origin, "the model is defined here");
                let _ = span;
                if let Some(h) = help {
                    d = d.help(h);
                }
                self.diags.push(d);
                None
            }
        }
    }

    /// Runs the shape rules of a model on an input type; the output type or a message.
    fn model_io(&mut self, cfg: &Value, input: &Ty) -> Result<Ty, (String, Option<String>)> {
        let f = cfg.get("fn").and_then(|v| v.as_str()).unwrap_or("");
        let args = &cfg["args"];
        let shape = match input {
            Ty::Domain(n, d) if n == "Traces" && d.len() == 2 => Shape::Vec(d[1]),
            Ty::Domain(n, d) if n == "Embeddings" && d.len() == 1 => Shape::Vec(d[0]),
            Ty::Domain(n, d) if n == "Tensor" && d.len() == 3 => Shape::Image(d[0], d[1], d[2]),
            Ty::Domain(n, d) if n == "Tensor" && d.len() == 2 => {
                Shape::Image(Dim::Const(1), d[0], d[1])
            }
            _ => {
                return Err((
                    format!("a model cannot take `{}` as input", self.sub.show(input)),
                    None,
                ))
            }
        };
        let batch = match input {
            Ty::Domain(n, d) if n == "Traces" => d[0],
            _ => Dim::Any,
        };
        let wrap = |s: Shape| match s {
            Shape::Vec(k) => Ty::Domain("Traces".into(), vec![batch, k]),
            Shape::Image(c, h, w) => Ty::Domain("Tensor".into(), vec![c, h, w]),
        };
        match f {
            "nn.unet" => {
                let depth = args["depth"].as_i64().unwrap_or(4);
                let base = args["base"].as_i64().unwrap_or(16);
                let classes = args["classes"].as_i64().unwrap_or(1);
                let inc = args["in_channels"].as_i64().unwrap_or(1);
                let Shape::Image(c, h, w) = shape else {
                    return Err((
                        "a U-Net takes images (`Tensor[c, h, w]`), not vectors".into(),
                        None,
                    ));
                };
                if let Dim::Const(c) = self.sub.dim(c) {
                    if c != inc {
                        return Err((
                            format!("the U-Net expects {inc} input channel(s), the data has {c}"),
                            Some(format!("set `in_channels: {c}`")),
                        ));
                    }
                }
                self.unet_shapes(depth, base, h, w)?;
                Ok(Ty::Domain("Tensor".into(), vec![Dim::Const(classes), h, w]))
            }
            "nn.sequential" => {
                let layers = args["layers"].as_array().cloned().unwrap_or_default();
                let out = self.apply_layers(&layers, shape)?;
                Ok(wrap(out))
            }
            "nn.autoencoder" => {
                let enc = args["encoder"].as_array().cloned().unwrap_or_default();
                let code = self.apply_layers(&enc, shape.clone())?;
                let dec = args["decoder"].as_array().cloned().unwrap_or_default();
                if !dec.is_empty() {
                    let back = self.apply_layers(&dec, code.clone())?;
                    let same = match (&back, &shape) {
                        (Shape::Vec(a), Shape::Vec(b)) => {
                            self.sub.unify_dim(*a, *b, Span::default())
                        }
                        (Shape::Image(a, b, c), Shape::Image(x, y, z)) => {
                            self.sub.unify_dim(*a, *x, Span::default())
                                && self.sub.unify_dim(*b, *y, Span::default())
                                && self.sub.unify_dim(*c, *z, Span::default())
                        }
                        _ => false,
                    };
                    if !same {
                        let show = |c: &Checker, s: &Shape| match s {
                            Shape::Vec(k) => format!("vectors of {}", c.sub.show_dim(*k)),
                            Shape::Image(a, b, d) => format!(
                                "images of {}×{}×{}",
                                c.sub.show_dim(*a),
                                c.sub.show_dim(*b),
                                c.sub.show_dim(*d)
                            ),
                        };
                        return Err((
                            format!("the decoder produces {}, but the input is {}: an autoencoder must reconstruct its input", show(self, &back), show(self, &shape)),
                            Some("end the decoder with a layer of the input's size, or leave `decoder` empty to mirror the encoder".into()),
                        ));
                    }
                }
                match code {
                    Shape::Vec(k) => Ok(Ty::Domain("Embeddings".into(), vec![k])),
                    Shape::Image(..) => Err((
                        "an autoencoder's encoder must end in a vector".into(),
                        Some("end the encoder with `flatten()` and `dense(k)`".into()),
                    )),
                }
            }
            _ => Err((format!("`{f}` is not a model"), None)),
        }
    }

    fn apply_layers(
        &mut self,
        layers: &[Value],
        mut s: Shape,
    ) -> Result<Shape, (String, Option<String>)> {
        for (i, l) in layers.iter().enumerate() {
            let f = l.get("fn").and_then(|v| v.as_str()).unwrap_or("");
            let a = &l["args"];
            let geti = |k: &str, d: i64| a.get(k).and_then(|v| v.as_i64()).unwrap_or(d);
            let name = f.trim_start_matches("nn.");
            let at = |msg: String| (format!("layer {} (`{name}`): {msg}", i + 1), None);
            s = match (name, s) {
                ("dense", Shape::Vec(_)) => Shape::Vec(Dim::Const(geti("units", 1))),
                ("dense", Shape::Image(..)) => {
                    return Err((
                        format!(
                            "layer {} (`dense`) needs a vector, but the data is an image here",
                            i + 1
                        ),
                        Some("add `flatten()` before it".into()),
                    ))
                }
                ("flatten", Shape::Image(c, h, w)) => {
                    match (self.sub.dim(c), self.sub.dim(h), self.sub.dim(w)) {
                        (Dim::Const(c), Dim::Const(h), Dim::Const(w)) => {
                            match c.checked_mul(h).and_then(|x| x.checked_mul(w)) {
                                Some(k) => Shape::Vec(Dim::Const(k)),
                                None => {
                                    return Err(at(
                                        "the flattened size does not fit in 64 bits".into()
                                    ))
                                }
                            }
                        }
                        _ => Shape::Vec(self.sub.fresh_dim("k")),
                    }
                }
                ("flatten", v) => v,
                ("conv2d", Shape::Image(_, h, w)) => {
                    let (k, st) = (geti("kernel", 3), geti("stride", 1));
                    let valid = a.get("padding").and_then(|v| v.as_str()) == Some("valid");
                    let out = |c: &mut Checker, d: Dim| -> Result<Dim, String> {
                        match c.sub.dim(d) {
                            Dim::Const(x) if valid => {
                                if x < k {
                                    Err(format!("the input ({x}) is smaller than the kernel ({k})"))
                                } else {
                                    Ok(Dim::Const((x - k) / st + 1))
                                }
                            }
                            Dim::Const(x) => Ok(Dim::Const(x.saturating_add(st - 1) / st)),
                            other if st == 1 && !valid => Ok(other),
                            _ => Ok(c.sub.fresh_dim("h")),
                        }
                    };
                    let h2 = out(self, h).map_err(at)?;
                    let w2 = out(self, w).map_err(at)?;
                    Shape::Image(Dim::Const(geti("filters", 1)), h2, w2)
                }
                ("conv_transpose2d", Shape::Image(_, h, w)) => {
                    let st = geti("stride", 2);
                    Shape::Image(
                        Dim::Const(geti("filters", 1)),
                        self.scale(h, st),
                        self.scale(w, st),
                    )
                }
                ("maxpool", Shape::Image(c, h, w)) => {
                    let k = geti("size", 2);
                    let h2 = self.halve(h, k).map_err(|x| {
                        at(format!("height {x} is not divisible by the pool size {k}"))
                    })?;
                    let w2 = self.halve(w, k).map_err(|x| {
                        at(format!("width {x} is not divisible by the pool size {k}"))
                    })?;
                    Shape::Image(c, h2, w2)
                }
                ("upsample", Shape::Image(c, h, w)) => {
                    let k = geti("factor", 2);
                    Shape::Image(c, self.scale(h, k), self.scale(w, k))
                }
                ("conv2d" | "conv_transpose2d" | "maxpool" | "upsample", Shape::Vec(_)) => {
                    return Err((
                        format!(
                            "layer {} (`{name}`) needs an image, but the data is a vector here",
                            i + 1
                        ),
                        None,
                    ))
                }
                (_, s) => s, // activations, normalisation, dropout: shape unchanged
            };
        }
        Ok(s)
    }

    fn scale(&mut self, d: Dim, k: i64) -> Dim {
        match self.sub.dim(d) {
            Dim::Const(x) => match x.checked_mul(k) {
                Some(v) => Dim::Const(v),
                None => self.sub.fresh_dim("h"),
            },
            _ => self.sub.fresh_dim("h"),
        }
    }

    fn halve(&mut self, d: Dim, k: i64) -> Result<Dim, i64> {
        match self.sub.dim(d) {
            Dim::Const(x) if x % k != 0 => Err(x),
            Dim::Const(x) => Ok(Dim::Const(x / k)),
            _ => Ok(self.sub.fresh_dim("h")),
        }
    }

    /// Walks a U-Net: at each level two 3×3 convolutions and a 2×2 max-pool on the way down,
    /// upsampling and concatenation with the skip connection on the way up. Spatial sizes
    /// must halve exactly at every level, so they must be divisible by 2^depth.
    fn unet_shapes(
        &mut self,
        depth: i64,
        base: i64,
        h: Dim,
        w: Dim,
    ) -> Result<(), (String, Option<String>)> {
        let f = 1i64 << depth;
        for (what, d) in [("height", h), ("width", w)] {
            if let Dim::Const(x) = self.sub.dim(d) {
                let mut size = x;
                for level in 1..=depth {
                    if size % 2 != 0 {
                        let lo = x / f * f;
                        let hi = lo.saturating_add(f);
                        let near = if x > 1 << 40 {
                            "a smaller size".to_string()
                        } else if lo > 0 {
                            format!("{lo} or {hi}")
                        } else {
                            hi.to_string()
                        };
                        return Err((
                            format!(
                                "a U-Net of depth {depth} needs sizes divisible by 2^{depth} = {f}, but the {what} is {x}: at level {level} the feature map is {size} pixels, which 2×2 max-pooling cannot halve"
                            ),
                            Some(format!("use patches of {near} pixels, or a U-Net of smaller depth")),
                        ));
                    }
                    size /= 2;
                }
            }
        }
        // Channels through the skip connections: the decoder at level i concatenates the
        // upsampled features (base·2^(i+1) → base·2^i after the up-convolution) with the
        // encoder's base·2^i channels, so its first convolution sees base·2^(i+1) channels.
        let mut enc = Vec::new();
        let mut ch = base;
        for _ in 0..depth {
            enc.push(ch);
            ch *= 2;
        }
        for skip in enc.iter().rev() {
            let up = ch / 2;
            let concat = up + skip;
            if concat != 2 * skip {
                return Err((
                    format!("skip connection channels disagree ({up} + {skip})"),
                    None,
                ));
            }
            ch = *skip;
        }
        Ok(())
    }

    // ------------------------------------------------------------------ tables

    fn derive(
        &mut self,
        decl: &Decl,
        bound: &[Bound],
        columns: Option<&Expr>,
        span: Span,
    ) -> Result<Ty, ()> {
        let Some(cols_expr) = columns else {
            self.diags.push(
                Diagnostic::error("E0201", "`derive` takes a column block")
                    .at(span, "no column block")
                    .help("write `table.derive { name = expression }`"),
            );
            return Err(());
        };
        let ExprKind::Columns(cols) = &cols_expr.kind else {
            return Err(());
        };
        let table = &bound[0];
        let schema = match self.sub.resolve(&table.t.ty) {
            Ty::Table(Some(s)) => Some(s),
            Ty::Table(None) => {
                self.diags.push(
                    Diagnostic::warning("W0201", "the table's columns are unknown, so `derive` cannot be checked")
                        .at(table.span, "schema unknown")
                        .help("annotate the source binding: `let t: Table{date: Date, price: Float} = csv(\"..\")`"),
                );
                None
            }
            _ => return Err(()),
        };
        let mut schema_v = schema.clone().unwrap_or_default();
        let mut out = Vec::new();
        let mut ok = true;
        for (name, e) in cols {
            let r = self.column_expr(e, schema.as_ref().map(|_| &schema_v), table.t.origin, decl);
            match r {
                Ok((ty, json)) => {
                    out.push(json!({"name": name.name, "expr": json}));
                    schema_v.retain(|(n, _)| *n != name.name);
                    schema_v.push((name.name.clone(), ty));
                }
                Err(()) => ok = false,
            }
        }
        if !ok {
            return Err(());
        }
        // Record the checked expressions as the op's `columns` argument.
        self.pending_columns = Some(json!(out));
        Ok(if schema.is_some() {
            Ty::Table(Some(schema_v))
        } else {
            Ty::Table(None)
        })
    }

    /// Checks a per-row expression; returns its type and its JSON form for the plan.
    fn column_expr(
        &mut self,
        e: &Expr,
        schema: Option<&Vec<(String, Ty)>>,
        table_origin: Span,
        decl: &Decl,
    ) -> Result<(Ty, Value), ()> {
        match &e.kind {
            ExprKind::Int { value, .. } => Ok((Ty::Int, json!(value))),
            ExprKind::Float { value, .. } => Ok((Ty::Float, json!(value))),
            ExprKind::Str(s) => Ok((Ty::Str, json!({"str": s}))),
            ExprKind::Bool(b) => Ok((Ty::Bool, json!(b))),
            ExprKind::Paren(x) => self.column_expr(x, schema, table_origin, decl),
            ExprKind::Ident(n) => match schema {
                None => Ok((Ty::Float, json!({"col": n}))),
                Some(s) => match s.iter().find(|(c, _)| c == n) {
                    Some((_, t)) => Ok((t.clone(), json!({"col": n}))),
                    None => {
                        let mut d = Diagnostic::error("E0203", format!("unknown column `{n}`"))
                            .at(e.span, "no such column")
                            .also(table_origin, "the table is defined here");
                        if let Some(sug) = did_you_mean(n, s.iter().map(|(c, _)| c.as_str())) {
                            d = d.help(format!("did you mean `{sug}`?"));
                        } else {
                            let names: Vec<&str> = s.iter().map(|(c, _)| c.as_str()).collect();
                            d = d.help(format!("the columns are: {}", names.join(", ")));
                        }
                        self.diags.push(d);
                        Err(())
                    }
                },
            },
            ExprKind::Unary { op, operand } => {
                let (t, j) = self.column_expr(operand, schema, table_origin, decl)?;
                let sym = if *op == ast::UnOp::Neg { "neg" } else { "not" };
                Ok((t, json!({"op": sym, "args": [j]})))
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.column_expr(lhs, schema, table_origin, decl);
                let r = self.column_expr(rhs, schema, table_origin, decl);
                let ((lt, lj), (rt, rj)) = (l?, r?);
                let num = |t: &Ty| matches!(t, Ty::Int | Ty::Float | Ty::Unknown);
                use ast::BinOp::*;
                let ty = match op {
                    Add | Sub | Mul | Div if num(&lt) && num(&rt) => {
                        if lt == Ty::Int && rt == Ty::Int && *op != Div {
                            Ty::Int
                        } else {
                            Ty::Float
                        }
                    }
                    Eq | Ne | Lt | Le | Gt | Ge => Ty::Bool,
                    And | Or if lt == Ty::Bool && rt == Ty::Bool => Ty::Bool,
                    _ => {
                        let (a, b) = (self.sub.show(&lt), self.sub.show(&rt));
                        self.diags.push(
                            Diagnostic::error(
                                "E0201",
                                format!(
                                    "`{}` cannot combine columns of type `{a}` and `{b}`",
                                    op.symbol()
                                ),
                            )
                            .at(e.span, "here"),
                        );
                        return Err(());
                    }
                };
                Ok((ty, json!({"op": op.symbol(), "args": [lj, rj]})))
            }
            ExprKind::Call { callee, args } => {
                // `lag(..)`, or `table.lag(..)` through the module's import alias.
                let via_module = match &callee.kind {
                    ExprKind::Member { base, name } => match &base.kind {
                        ExprKind::Ident(m) if matches!(self.imports.get(m), Some(crate::check::Imported::Module(x)) if *x == decl.module) => {
                            Some(&name.name)
                        }
                        _ => None,
                    },
                    _ => None,
                };
                let plain = match &callee.kind {
                    ExprKind::Ident(n) => Some(n),
                    _ => None,
                };
                let Some(fname) = plain.or(via_module) else {
                    self.diags.push(
                        Diagnostic::error("E0209", "only column functions can be called here")
                            .at(callee.span, "not a column function"),
                    );
                    return Err(());
                };
                let module = decl.module.clone();
                let Some(f) = self.prelude.decl(&module, fname).cloned() else {
                    let names: Vec<String> = self.prelude.modules[&module]
                        .items
                        .values()
                        .filter(|d| d.kind == crate::prelude::DeclKind::Builtin && d.ret.as_ref().is_some_and(|r| matches!(r, ast::TypeExpr::Named { name, .. } if name.name == "Float")))
                        .map(|d| d.name.clone())
                        .collect();
                    let mut d =
                        Diagnostic::error("E0105", format!("unknown column function `{fname}`"))
                            .at(callee.span, "not a column function");
                    d = match did_you_mean(fname, names.iter().map(|s| s.as_str())) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None => d.help(format!("column functions: {}", names.join(", "))),
                    };
                    self.diags.push(d);
                    return Err(());
                };
                let mut jargs = Vec::new();
                let mut named = serde_json::Map::new();
                let mut ok = true;
                for (i, a) in args.iter().enumerate() {
                    // Parameters typed `Float` take column expressions; `Int` ones constants.
                    let param = match &a.name {
                        Some(n) => f.params.iter().find(|p| p.name.name == n.name),
                        None => f.params.get(i),
                    };
                    let Some(param) = param else {
                        let what = a
                            .name
                            .as_ref()
                            .map(|n| format!("parameter `{}`", n.name))
                            .unwrap_or_else(|| format!("{} argument(s)", f.params.len()));
                        self.diags.push(
                            Diagnostic::error("E0207", format!("`{fname}` has no {what}"))
                                .at(a.span, "unknown argument"),
                        );
                        ok = false;
                        continue;
                    };
                    let pname = param.name.name.clone();
                    let is_column = matches!(&param.ty, ast::TypeExpr::Named { name, .. } if name.name == "Float" || name.name == "Bool");
                    if is_column {
                        match self.column_expr(&a.value, schema, table_origin, decl) {
                            Ok((_, j)) => jargs.push(j),
                            Err(()) => ok = false,
                        }
                        continue;
                    }
                    let t = self.expr(&a.value, &mut crate::check::Scope::default());
                    match t.val.as_i64() {
                        Some(v) if v > 0 => {
                            named.insert(pname, json!(v));
                        }
                        _ => {
                            self.diags.push(
                                Diagnostic::error("E0210", format!("`{pname}` of `{fname}` must be a positive integer constant"))
                                    .at(a.value.span, "expected a positive integer"),
                            );
                            ok = false;
                        }
                    }
                }
                for p in &f.params {
                    let is_column = matches!(&p.ty, ast::TypeExpr::Named { name, .. } if name.name == "Float" || name.name == "Bool");
                    if !is_column && !named.contains_key(&p.name.name) {
                        if let Some(ExprKind::Int { value, .. }) =
                            p.default.as_ref().map(|d| &d.kind)
                        {
                            named.insert(p.name.name.clone(), json!(value));
                        }
                    }
                }
                if !ok {
                    return Err(());
                }
                if jargs.is_empty() {
                    self.diags.push(
                        Diagnostic::error("E0207", format!("`{fname}` needs a column"))
                            .at(e.span, "missing column"),
                    );
                    return Err(());
                }
                Ok((
                    Ty::Float,
                    json!({"call": fname, "args": jargs, "params": Value::Object(named)}),
                ))
            }
            ExprKind::Quantity { .. }
            | ExprKind::List(_)
            | ExprKind::Record(_)
            | ExprKind::Columns(_)
            | ExprKind::Member { .. } => {
                self.diags.push(
                    Diagnostic::error("E0201", "not a column expression")
                        .at(e.span, "not allowed in a column block")
                        .help("column expressions use columns, numbers, arithmetic and column functions such as `lag(col, 12)`"),
                );
                Err(())
            }
        }
    }

    /// `series(time: "month", value: "steel")`, `select(["a", "b"])`: column names checked.
    fn column_args(&mut self, decl: &Decl, bound: &[Bound], ret: Ty) -> Result<Ty, ()> {
        let table = &bound[0];
        let Ty::Table(Some(schema)) = self.sub.resolve(&table.t.ty) else {
            return Ok(ret);
        };
        let mut ok = true;
        let mut picked = Vec::new();
        for (p, b) in decl.params.iter().zip(bound).skip(1) {
            let names: Vec<String> = match b.t.val.as_const() {
                Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
                Some(Value::Array(xs)) if p.name.name == "columns" => xs
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                _ => continue,
            };
            if !matches!(p.name.name.as_str(), "time" | "value" | "id" | "columns") {
                continue;
            }
            for n in names {
                if let Some(col) = schema.iter().find(|(c, _)| *c == n) {
                    // A series needs a time column, numeric values and a label-like id.
                    let role = p.name.name.as_str();
                    let fits = match role {
                        "time" => matches!(col.1, Ty::Date | Ty::Int),
                        "value" => matches!(col.1, Ty::Float | Ty::Int),
                        "id" => matches!(col.1, Ty::Str | Ty::Int),
                        _ => true,
                    };
                    if decl.name == "series" && !fits {
                        let want = match role {
                            "time" => "`Date` or `Int`",
                            "value" => "`Float` or `Int`",
                            _ => "`Str` or `Int`",
                        };
                        self.diags.push(
                            Diagnostic::error("E0201", format!("column `{n}` has type `{}`, but the {role} column must be {want}", self.sub.show(&col.1)))
                                .at(b.span, format!("`{}` column", self.sub.show(&col.1)))
                                .also(table.t.origin, "the table is defined here"),
                        );
                        ok = false;
                    }
                    picked.push(col.clone());
                } else {
                    let mut d = Diagnostic::error("E0203", format!("unknown column `{n}`"))
                        .at(b.span, "no such column")
                        .also(table.t.origin, "the table is defined here");
                    if let Some(s) = did_you_mean(&n, schema.iter().map(|(c, _)| c.as_str())) {
                        d = d.help(format!("did you mean `{s}`?"));
                    } else {
                        let cols: Vec<&str> = schema.iter().map(|(c, _)| c.as_str()).collect();
                        d = d.help(format!("the columns are: {}", cols.join(", ")));
                    }
                    self.diags.push(d);
                    ok = false;
                }
            }
        }
        if !ok {
            return Err(());
        }
        if decl.name == "select" {
            return Ok(Ty::Table(Some(picked)));
        }
        Ok(ret)
    }
}

fn valid_secret_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' || c == '/')
}

/// Validates a five-field cron expression: each field a `*`, a number, a range `a-b`, a
/// step `*/n` or `a-b/n`, or a comma-separated list of those, within the field's range.
fn check_cron(e: &str) -> Result<(), String> {
    const FIELDS: [(&str, u32, u32); 5] = [
        ("minute", 0, 59),
        ("hour", 0, 23),
        ("day of month", 1, 31),
        ("month", 1, 12),
        ("day of week", 0, 7),
    ];
    let parts: Vec<&str> = e.split_whitespace().collect();
    if parts.len() != 5 {
        return Err(format!(
            "it has {} field(s), a cron expression has 5",
            parts.len()
        ));
    }
    for (part, (name, lo, hi)) in parts.iter().zip(FIELDS) {
        for item in part.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (item, None),
            };
            if let Some(s) = step {
                match s.parse::<u32>() {
                    Ok(n) if n >= 1 => {}
                    _ => return Err(format!("bad step `{s}` in the {name} field")),
                }
            }
            if range == "*" {
                continue;
            }
            let (a, b) = match range.split_once('-') {
                Some((a, b)) => (a, b),
                None => (range, range),
            };
            let parse = |x: &str| {
                x.parse::<u32>()
                    .map_err(|_| format!("`{x}` is not a number in the {name} field"))
            };
            let (a, b) = (parse(a)?, parse(b)?);
            if a < lo || b > hi || a > b {
                return Err(format!(
                    "`{range}` is outside {lo}-{hi} in the {name} field"
                ));
            }
        }
    }
    Ok(())
}
