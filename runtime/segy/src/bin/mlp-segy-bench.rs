//! Times mlp-segy's reads of one file, for `bench/vs_segyio.py` to set beside segyio.
//!
//! `mlp-segy-bench FILE [REPEATS]` prints one JSON object: for each operation the best and
//! median wall time in seconds over REPEATS runs (after one warm-up run).

use mlp_segy::{OpenOptions, SegyFile};
use std::time::Instant;

fn time<T>(repeats: usize, mut f: impl FnMut() -> T) -> (f64, f64) {
    std::hint::black_box(f());
    let mut v: Vec<f64> = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64()
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    (v[0], v[v.len() / 2])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: mlp-segy-bench FILE [REPEATS]");
        std::process::exit(2);
    };
    let repeats: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5).max(1);
    let opts = OpenOptions::default();
    let f = match SegyFile::open(path, &opts) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {path}: {e}");
            std::process::exit(1);
        }
    };
    let cube = f
        .geometry
        .cube
        .as_ref()
        .expect("the benchmark file has a grid");
    let il = cube.ilines[cube.ilines.len() / 2];
    let xl = cube.xlines[cube.xlines.len() / 2];
    let k = f.samples / 2;
    let mut out = serde_json::Map::new();
    let mut put = |name: &str, (best, median): (f64, f64)| {
        out.insert(
            name.to_string(),
            serde_json::json!({ "best_s": best, "median_s": median }),
        );
    };
    put(
        "open",
        time(repeats, || SegyFile::open(path, &opts).map(|f| f.traces)),
    );
    put("all", time(repeats, || f.read_all()));
    // The same decode into a buffer that is already allocated and touched.
    let mut buf = f.read_all();
    put(
        "all_into_buffer",
        time(repeats, || {
            f.read_traces_into(0..f.traces, &mut buf)
                .expect("all traces");
        }),
    );
    drop(buf);
    put(
        "inline",
        time(repeats * 4, || f.read_inline(il).expect("inline")),
    );
    put(
        "crossline",
        time(repeats * 4, || f.read_crossline(xl).expect("crossline")),
    );
    put(
        "depth_slice",
        time(repeats * 4, || f.read_depth_slice(k).expect("depth slice")),
    );
    out.insert("threads".into(), rayon::current_num_threads().into());
    out.insert("bytes".into(), (f.bytes().len() as u64).into());
    out.insert("traces".into(), f.traces.into());
    println!("{}", serde_json::Value::Object(out));
}
