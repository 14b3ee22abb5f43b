//! Graph renderings of a plan: Graphviz DOT and Mermaid.
//!
//! One cluster (subgraph) per pipeline, one box per node labelled with its binding, op and
//! type, edges labelled with argument names. Effects stand out: `output` nodes are notes,
//! `deploy` nodes components (DOT) or hexagons (Mermaid). The text is a function of the plan
//! only (no hash-map order, no timestamps), so renderings can be snapshot-tested and diffed.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use crate::{Device, Node, NodeKind, PipelinePlan, Plan};

/// The three label lines of a node: binding, op (with `[gpu]` when pinned to the GPU), type.
fn label_lines(p: &PipelinePlan, n: &Node) -> [String; 3] {
    let device = if n.device == Device::Gpu {
        " [gpu]"
    } else {
        ""
    };
    [
        n.binding(&p.name).to_string(),
        format!("{}{device}", n.op),
        n.ty.clone(),
    ]
}

/// Graphviz DOT. Node ids are used as quoted DOT ids, which is unambiguous because plan ids
/// start with their pipeline's name (see [`crate::validate`]).
pub fn to_dot(plan: &Plan) -> String {
    let mut out = String::new();
    out.push_str("digraph plan {\n");
    out.push_str("  rankdir=TB;\n");
    out.push_str("  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=10];\n");
    for (i, p) in plan.pipelines.iter().enumerate() {
        let _ = writeln!(out, "\n  subgraph cluster_{i} {{");
        let mut title = format!("pipeline {}", p.name);
        if let Some(doc) = p.doc.as_deref().and_then(|d| d.lines().next()) {
            let _ = write!(title, "\n{doc}");
        }
        let _ = writeln!(out, "    label={};", dot_string(&title));
        for n in &p.nodes {
            let label = label_lines(p, n).join("\n");
            let style = match n.kind {
                NodeKind::Op => String::new(),
                NodeKind::Output => ", shape=note, style=filled, fillcolor=\"#e6f0ff\"".to_string(),
                NodeKind::Deploy => {
                    ", shape=component, style=filled, fillcolor=\"#ffeedd\"".to_string()
                }
            };
            let _ = writeln!(
                out,
                "    {} [label={}{style}];",
                dot_string(&n.id),
                dot_string(&label)
            );
        }
        for n in &p.nodes {
            for input in &n.inputs {
                let _ = writeln!(
                    out,
                    "    {} -> {} [label={}];",
                    dot_string(&input.from),
                    dot_string(&n.id),
                    dot_string(&input.name)
                );
            }
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}

/// A DOT quoted string: `"` and `\` escaped, line breaks as `\n` (centred lines).
fn dot_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Mermaid flowchart. Mermaid ids allow only a restricted alphabet (and `end` is a keyword),
/// so every node gets `n_` plus its id with other characters replaced by `_`, made unique
/// with a numeric suffix when two ids sanitize alike.
pub fn to_mermaid(plan: &Plan) -> String {
    let mut ids = MermaidIds::default();
    let mut out = String::new();
    out.push_str("flowchart TB\n");
    out.push_str("  classDef output fill:#e6f0ff,stroke:#3366cc\n");
    out.push_str("  classDef deploy fill:#ffeedd,stroke:#cc6600\n");
    for (i, p) in plan.pipelines.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph p_{i}[\"{}\"]",
            mermaid_text(&format!("pipeline {}", p.name))
        );
        for n in &p.nodes {
            let id = ids.get(&n.id);
            let label = label_lines(p, n)
                .iter()
                .map(|l| mermaid_text(l))
                .collect::<Vec<_>>()
                .join("<br/>");
            let _ = match n.kind {
                NodeKind::Op => writeln!(out, "    {id}[\"{label}\"]"),
                NodeKind::Output => writeln!(out, "    {id}[/\"{label}\"/]:::output"),
                NodeKind::Deploy => writeln!(out, "    {id}{{{{\"{label}\"}}}}:::deploy"),
            };
        }
        out.push_str("  end\n");
        for n in &p.nodes {
            for input in &n.inputs {
                let from = ids.get(&input.from);
                let to = ids.get(&n.id);
                let _ = writeln!(out, "  {from} -->|\"{}\"| {to}", mermaid_text(&input.name));
            }
        }
    }
    out
}

/// Text inside a quoted Mermaid label: `"`, `#`, `&`, `<`, `>` as Mermaid entity codes (the
/// quotes end the label; the rest would be read as entities or HTML).
fn mermaid_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '#' => out.push_str("#35;"),
            '"' => out.push_str("#quot;"),
            '&' => out.push_str("#amp;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '\n' => out.push_str("<br/>"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

#[derive(Default)]
struct MermaidIds {
    assigned: HashMap<String, String>,
    used: HashSet<String>,
}

impl MermaidIds {
    fn get(&mut self, plan_id: &str) -> String {
        if let Some(id) = self.assigned.get(plan_id) {
            return id.clone();
        }
        let base: String = std::iter::once('n')
            .chain(std::iter::once('_'))
            .chain(plan_id.chars().map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            }))
            .collect();
        let mut id = base.clone();
        let mut k = 2;
        while self.used.contains(&id) {
            id = format!("{base}_{k}");
            k += 1;
        }
        self.used.insert(id.clone());
        self.assigned.insert(plan_id.to_string(), id.clone());
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mermaid_ids_are_sanitized_and_unique() {
        let mut ids = MermaidIds::default();
        assert_eq!(ids.get("p.index/encode"), "n_p_index_encode");
        assert_eq!(ids.get("p.index_encode"), "n_p_index_encode_2");
        assert_eq!(ids.get("p.index/encode"), "n_p_index_encode");
        assert_eq!(ids.get("end"), "n_end");
    }

    #[test]
    fn dot_strings_escape() {
        assert_eq!(dot_string("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
    }
}
