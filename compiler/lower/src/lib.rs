//! Lowering: the checker's typed nodes become plan nodes. Constant arguments become
//! `params`; references to other nodes become `inputs` (with `{"input": "name[i]"}`
//! placeholders where a node sits inside a list or record argument). Cache keys are
//! computed last, in topological order.

use mlp_diagnostics::Diagnostic;
use mlp_plan::{
    Device, Input, Node, NodeKind, ParamValue, PipelinePlan, Plan, Resources, Source, SourceSpan,
};
use mlp_sema::hir::{self, CheckedPipeline, Val};
use mlp_sema::Checked;
use serde_json::{json, Value};

/// Lowers a checked file. `path` and `bytes` identify the source in the plan's header.
/// Fails with diagnostics when a pipeline parameter has no value.
pub fn lower(
    path: &str,
    bytes: &[u8],
    text: &str,
    checked: &Checked,
) -> Result<Plan, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut pipelines = Vec::new();
    let lines = Lines::new(text);
    for p in &checked.pipelines {
        pipelines.push(lower_pipeline(p, &lines, &mut diags));
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    let mut plan = Plan {
        format: mlp_plan::PLAN_FORMAT.to_string(),
        version: mlp_plan::PLAN_VERSION,
        compiler: format!("mlp {}", env!("CARGO_PKG_VERSION")),
        source: Source {
            path: path.to_string(),
            hash: mlp_plan::hash_source(bytes),
        },
        pipelines,
    };
    plan.compute_cache_keys();
    Ok(plan)
}

fn lower_pipeline(p: &CheckedPipeline, lines: &Lines, diags: &mut Vec<Diagnostic>) -> PipelinePlan {
    let mut params = Vec::new();
    for q in &p.params {
        match &q.value {
            Some(v) => params.push(ParamValue {
                name: q.name.clone(),
                ty: q.ty.clone(),
                value: v.clone(),
                overridden: q.overridden,
            }),
            None => diags.push(
                Diagnostic::error(
                    "E0301",
                    format!("pipeline parameter `{}` has no value", q.name),
                )
                .at(q.span, "no default")
                .help(format!(
                    "give it a default, or pass `--set {}=<value>`",
                    q.name
                )),
            ),
        }
    }
    let nodes = p.nodes.iter().map(|n| lower_node(n, lines)).collect();
    PipelinePlan {
        name: p.name.clone(),
        doc: p.doc.clone(),
        params,
        nodes,
        schedule: p.schedule.clone(),
    }
}

fn lower_node(n: &hir::HNode, lines: &Lines) -> Node {
    let kind = match n.kind {
        hir::NodeKind::Op => NodeKind::Op,
        hir::NodeKind::Output => NodeKind::Output,
        hir::NodeKind::Deploy => NodeKind::Deploy,
    };
    let mut node = Node::new(n.id.clone(), kind, n.op.clone(), n.ty.clone());
    node.op_version = n.op_version;
    node.device = match n.device {
        mlp_sema::prelude::Device::Cpu => Device::Cpu,
        mlp_sema::prelude::Device::Gpu => Device::Gpu,
        mlp_sema::prelude::Device::Any => Device::Any,
    };
    node.resources = Resources {
        cpu: n.cpu,
        memory: n.memory,
        gpu: n.gpu,
    };
    let (line, column) = lines.line_col(n.span.start as usize);
    node.span = Some(SourceSpan {
        line: line as u32,
        column: column as u32,
        start: n.span.start,
        end: n.span.end,
    });
    for (name, val) in &n.args {
        let mut inputs = Vec::new();
        let v = split(val, name, &mut inputs);
        let whole_node = matches!(val, Val::Node(_));
        if !whole_node {
            node.params.insert(name.clone(), v);
        }
        node.inputs.extend(inputs);
    }
    node
}

/// Replaces node references inside a value by `{"input": path}` placeholders, collecting
/// the edges.
fn split(v: &Val, path: &str, inputs: &mut Vec<Input>) -> Value {
    match v {
        Val::Const(c) => c.clone(),
        Val::Node(id) => {
            inputs.push(Input {
                name: path.to_string(),
                from: id.clone(),
            });
            json!({"input": path})
        }
        Val::List(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| split(x, &format!("{path}[{i}]"), inputs))
                .collect(),
        ),
        Val::Record(fields) => {
            let mut m = serde_json::Map::new();
            for (k, x) in fields {
                m.insert(k.clone(), split(x, &format!("{path}.{k}"), inputs));
            }
            Value::Object(m)
        }
        Val::Unknown => Value::Null,
    }
}

/// Line starts of a file, for line/column lookups in O(log n) (a scan from the start of
/// the file per node would make planning quadratic in the file's size).
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
    /// The last lookup (offset, line, column): nodes come mostly in source order, so
    /// counting characters from there keeps long lines linear.
    last: std::cell::Cell<(usize, usize, usize)>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines {
            text,
            starts,
            last: std::cell::Cell::new((0, 1, 1)),
        }
    }

    /// 1-based line and column (in characters), as `mlp_diagnostics::line_col` computes them.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut off = offset.min(self.text.len());
        while off > 0 && !self.text.is_char_boundary(off) {
            off -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= off);
        let start = self.starts[line - 1];
        let (last_off, last_line, last_col) = self.last.get();
        let col = if last_line == line && last_off <= off && last_off >= start {
            last_col + self.text[last_off..off].chars().count()
        } else {
            self.text[start..off].chars().count() + 1
        };
        self.last.set((off, line, col));
        (line, col)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_col_agrees_with_the_diagnostics_crate() {
        let text = "ab\ncé\n\nxyz";
        let lines = super::Lines::new(text);
        for off in 0..=text.len() + 2 {
            assert_eq!(
                lines.line_col(off),
                mlp_diagnostics::line_col(text, off),
                "offset {off}"
            );
        }
    }
}
