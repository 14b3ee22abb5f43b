//! Parses and validates every WGSL kernel with naga (no GPU needed), and checks that each entry
//! point stays within WebGPU's default limits (so the kernels run on any adapter; the few that
//! need more workgroup memory are listed with their exact needs), and that the
//! GPU backend's kernel registry and `kernels/*.wgsl` name the same files.

use std::collections::BTreeSet;
use std::path::PathBuf;

use naga::valid::{Capabilities, ValidationFlags, Validator};

fn kernel_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("kernels")
}

fn kernel_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(kernel_dir())
        .expect("kernels/ directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).expect("read kernel");
            (name, text)
        })
        .collect();
    files.sort();
    files
}

/// WebGPU's default limits (what every adapter offers).
const MAX_STORAGE_BUFFERS_PER_STAGE: usize = 8;
const MAX_WORKGROUP_STORAGE: u32 = 16384;
const MAX_INVOCATIONS: u32 = 256;

#[test]
fn every_kernel_parses_and_validates() {
    let files = kernel_files();
    assert!(files.len() >= 30, "only {} kernels found", files.len());
    let mut failures = Vec::new();
    for (name, text) in &files {
        let module = match naga::front::wgsl::parse_str(text) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{name}: parse error:\n{}", e.emit_to_string(text)));
                continue;
            }
        };
        let info = match Validator::new(ValidationFlags::all(), Capabilities::default())
            .validate(&module)
        {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!(
                    "{name}: validation error:\n{}",
                    e.emit_to_string(text)
                ));
                continue;
            }
        };
        assert!(!module.entry_points.is_empty(), "{name} has no entry point");
        for (k, ep) in module.entry_points.iter().enumerate() {
            assert_eq!(
                ep.stage,
                naga::ShaderStage::Compute,
                "{name}: {} is not a compute entry point",
                ep.name
            );
            let [x, y, z] = ep.workgroup_size;
            assert!(
                x * y * z <= MAX_INVOCATIONS,
                "{name}: {} has {} invocations per workgroup",
                ep.name,
                x * y * z
            );
            let ep_info = info.get_entry_point(k);
            let mut storage = 0;
            let mut shared = 0u32;
            for (h, var) in module.global_variables.iter() {
                if ep_info[h].is_empty() {
                    continue;
                }
                match var.space {
                    naga::AddressSpace::Storage { .. } => storage += 1,
                    naga::AddressSpace::WorkGroup => {
                        shared += module.types[var.ty].inner.size(module.to_ctx())
                    }
                    _ => {}
                }
            }
            assert!(
                storage <= MAX_STORAGE_BUFFERS_PER_STAGE,
                "{name}: {} binds {storage} storage buffers",
                ep.name
            );
            // Kernels past WebGPU's default are listed with their exact needs (the host
            // dispatches them only on devices that offer as much).
            let listed = mlp_compute::gpu::kernel_workgroup_bytes(name);
            assert!(
                shared <= MAX_WORKGROUP_STORAGE && listed == MAX_WORKGROUP_STORAGE
                    || shared == listed,
                "{name}: {} uses {shared} bytes of workgroup memory, kernels.rs lists {listed}",
                ep.name
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn registry_matches_kernel_files() {
    let on_disk: BTreeSet<String> = kernel_files().into_iter().map(|(n, _)| n).collect();
    let registry: BTreeSet<String> = mlp_compute::gpu::kernel_sources()
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(
        on_disk, registry,
        "kernels/*.wgsl and the GPU kernel registry differ"
    );
    for (name, text) in mlp_compute::gpu::kernel_sources() {
        let disk = std::fs::read_to_string(kernel_dir().join(name)).unwrap();
        assert_eq!(&disk, text, "{name}: registry text differs from the file");
    }
}
