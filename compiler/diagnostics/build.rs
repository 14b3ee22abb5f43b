//! Embeds every page under spec/diagnostics/ so `mlp explain CODE` works from the binary alone.
use std::{env, fs, path::PathBuf};

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../spec/diagnostics");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut pages: Vec<(String, PathBuf)> = Vec::new();
    if let Ok(entries) = fs::read_dir(&dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().and_then(|s| s.to_str()) == Some("md") {
                let stem = p.file_stem().unwrap().to_string_lossy().to_string();
                if stem.len() == 5 && (stem.starts_with('E') || stem.starts_with('W')) {
                    println!("cargo:rerun-if-changed={}", p.display());
                    pages.push((stem, p.canonicalize().unwrap()));
                }
            }
        }
    }
    pages.sort();
    let mut out = String::from("/// (code, page markdown) for every page in spec/diagnostics, sorted by code.\npub static PAGES: &[(&str, &str)] = &[\n");
    for (code, path) in &pages {
        out.push_str(&format!(
            "    ({code:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    out.push_str("];\n");
    let dest = PathBuf::from(env::var("OUT_DIR").unwrap()).join("pages.rs");
    fs::write(dest, out).unwrap();
}
