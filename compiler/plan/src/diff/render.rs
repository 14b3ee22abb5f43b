//! Text rendering of a [`PlanDiff`], modelled on `terraform plan`: one line per added (`+`),
//! removed (`-`) or changed (`~`) node, the reasons indented below, and a summary line that
//! CI logs can grep.

use std::fmt::Write;

use serde_json::Value;

use super::{NodeChange, PipelineChange, PipelineDiff, PipelineStatus, PlanDiff, Reason};
use crate::value::display;
use crate::Resources;

/// Longest rendering of a value before it is cut with `…`.
const MAX_VALUE_CHARS: usize = 60;

pub(super) fn render_text(d: &PlanDiff) -> String {
    let mut out = String::new();
    if d.is_empty() {
        out.push_str("No changes.\n");
    }
    for p in &d.pipelines {
        if p.status != PipelineStatus::Unchanged {
            render_pipeline(p, &mut out);
        }
    }
    let _ = writeln!(
        out,
        "\nPlan: {} to add, {} to change, {} to remove ({} unchanged).",
        d.to_add, d.to_change, d.to_remove, d.unchanged
    );
    out
}

fn render_pipeline(p: &PipelineDiff, out: &mut String) {
    let sigil = match p.status {
        PipelineStatus::Added => '+',
        PipelineStatus::Removed => '-',
        _ => '~',
    };
    let _ = writeln!(out, "{sigil} pipeline {}", p.name);
    for c in &p.changes {
        let _ = writeln!(out, "    {}", pipeline_change(c));
    }
    for n in &p.nodes {
        let sigil = match n.change {
            NodeChange::Added => '+',
            NodeChange::Removed => '-',
            NodeChange::Changed => '~',
        };
        let note = if n.change == NodeChange::Changed && !n.cache_key_changed {
            " (cache key unchanged)"
        } else {
            ""
        };
        let _ = writeln!(out, "    {sigil} {} ({}){note}", n.id, n.op);
        for r in &n.reasons {
            let _ = writeln!(out, "        {}", reason(r));
        }
    }
    if p.status == PipelineStatus::Changed {
        let s = if p.unchanged == 1 { "" } else { "s" };
        let _ = writeln!(out, "    unchanged: {} node{s}", p.unchanged);
    }
}

fn pipeline_change(c: &PipelineChange) -> String {
    match c {
        PipelineChange::ParamAdded { param } => format!(
            "+ param `{}`: {} = {}",
            param.name,
            param.ty,
            val(&param.value)
        ),
        PipelineChange::ParamRemoved { param } => format!(
            "- param `{}`: {} = {}",
            param.name,
            param.ty,
            val(&param.value)
        ),
        PipelineChange::ParamChanged { old, new } => {
            let mut s = format!("~ param `{}`:", new.name);
            if old.value != new.value {
                let _ = write!(s, " {} → {}", val(&old.value), val(&new.value));
            }
            if old.ty != new.ty {
                let _ = write!(s, " (type {} → {})", old.ty, new.ty);
            }
            if old.overridden != new.overridden {
                s.push_str(if new.overridden {
                    " (now overridden)"
                } else {
                    " (no longer overridden)"
                });
            }
            s
        }
        PipelineChange::ScheduleChanged { old, new } => {
            format!("~ schedule: {} → {}", opt_val(old), opt_val(new))
        }
    }
}

/// The one-line explanation of a reason, as shown under a `~` node.
pub(crate) fn reason(r: &Reason) -> String {
    match r {
        Reason::Renamed { from } => format!("renamed from `{from}`"),
        Reason::KindChanged { old, new } => {
            format!("kind: {} → {}", json_word(old), json_word(new))
        }
        Reason::OpChanged { old, new } => format!("op: `{old}` → `{new}`"),
        Reason::OpVersionChanged { old, new } => format!("op_version: {old} → {new}"),
        Reason::ParamAdded { path, new } => format!("param `{path}` added: {}", val(new)),
        Reason::ParamRemoved { path, old } => format!("param `{path}` removed (was {})", val(old)),
        Reason::ParamChanged { path, old, new } => {
            format!("param `{path}`: {} → {}", val(old), val(new))
        }
        Reason::InputAdded { name, from } => format!("input `{name}` added (from `{from}`)"),
        Reason::InputRemoved { name, from } => {
            format!("input `{name}` removed (was from `{from}`)")
        }
        Reason::InputRewired { name, old, new } => {
            format!("input `{name}`: from `{old}` → from `{new}`")
        }
        Reason::InputsReordered { old, new } => {
            format!("inputs reordered: {} → {}", old.join(", "), new.join(", "))
        }
        Reason::TypeChanged { old, new } => format!("type: {old} → {new}"),
        Reason::DeviceChanged { old, new } => {
            format!("device: {} → {}", json_word(old), json_word(new))
        }
        Reason::ResourcesChanged { old, new } => {
            format!("resources: {} → {}", resources(old), resources(new))
        }
        Reason::UpstreamChanged { from, .. } => {
            format!("upstream input `{from}` changed (cache key)")
        }
        Reason::CacheKeyChanged { old, new } => format!(
            "cache key changed ({} → {}) with no recorded cause; was the plan edited by hand?",
            short(old),
            short(new)
        ),
    }
}

fn val(v: &Value) -> String {
    let s = display(v);
    if s.chars().count() > MAX_VALUE_CHARS {
        let cut: String = s.chars().take(MAX_VALUE_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        s
    }
}

fn opt_val(v: &Option<Value>) -> String {
    v.as_ref().map_or_else(|| "none".to_string(), val)
}

fn short(key: &str) -> &str {
    key.get(..12).unwrap_or(key)
}

/// The serde spelling of a unit enum (`gpu`, `output`), so text and JSON agree.
fn json_word<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        _ => "?".to_string(),
    }
}

fn resources(r: &Resources) -> String {
    let mut parts = Vec::new();
    if let Some(cpu) = r.cpu {
        parts.push(format!("cpu {cpu}"));
    }
    if let Some(mem) = r.memory {
        parts.push(format!("memory {}", bytes(mem)));
    }
    if r.gpu > 0 {
        parts.push(format!("gpu {}", r.gpu));
    }
    if parts.is_empty() {
        "default".to_string()
    } else {
        parts.join(", ")
    }
}

/// Bytes in the largest binary unit that divides them exactly, so nothing is rounded away.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["TiB", "GiB", "MiB", "KiB", "B"];
    for (i, unit) in UNITS.iter().enumerate() {
        let size = 1u64 << (10 * (4 - i));
        // `size` is a power of two: a mask test keeps the 1.85 MSRV (no `is_multiple_of`).
        if n >= size && n & (size - 1) == 0 {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_exact_units() {
        assert_eq!(bytes(4 << 30), "4 GiB");
        assert_eq!(bytes(1536), "1536 B");
        assert_eq!(bytes(2048), "2 KiB");
        assert_eq!(bytes(0), "0 B");
    }
}
