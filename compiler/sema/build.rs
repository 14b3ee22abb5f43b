//! Embeds the standard library (stdlib/*.mlp) as the compiler's prelude: the compiler
//! itself does no file I/O at run time.
use std::{env, fs, path::PathBuf};

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../stdlib");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    if let Ok(entries) = fs::read_dir(&dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().and_then(|s| s.to_str()) == Some("mlp") {
                println!("cargo:rerun-if-changed={}", p.display());
                let stem = p.file_stem().unwrap().to_string_lossy().to_string();
                files.push((stem, p.canonicalize().unwrap()));
            }
        }
    }
    files.sort();
    let mut out = String::from("/// (module name, source) of every stdlib/*.mlp file, sorted by name.\npub static STDLIB: &[(&str, &str)] = &[\n");
    for (name, path) in &files {
        out.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    out.push_str("];\n");
    fs::write(
        PathBuf::from(env::var("OUT_DIR").unwrap()).join("stdlib.rs"),
        out,
    )
    .unwrap();
}
