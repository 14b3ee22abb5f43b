fn comment_texts(src: &str) -> Vec<String> {
    mlp_syntax::parse(src).file.comments.iter().map(|c| c.text.trim_end().to_string()).collect()
}
#[test]
fn scratch() {
    let base = std::fs::read_to_string("/tmp/in.mlp").unwrap();
    let base = mlp_fmt::format_source(&base).unwrap();
    let count = comment_texts(&base).len();
    let spots: Vec<usize> = base.char_indices().filter(|(_, c)| *c == ' ' || *c == '\n').map(|(i, _)| i).collect();
    let probes = [" // p1\n", "\n// p2\n", "\n/// p3\n", "\n\n// p4\n\n", "\n\n/// p5\n"];
    let (mut tried, mut errs, mut bad) = (0, 0, 0);
    let mut seed: u64 = 12345;
    let mut rnd = |n: usize| { seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); ((seed >> 33) as usize) % n };
    for _ in 0..3000 {
        let mut a = spots[rnd(spots.len())]; let mut b = spots[rnd(spots.len())];
        if a == b { continue; } if a > b { std::mem::swap(&mut a, &mut b); }
        let pa = probes[rnd(probes.len())]; let pb = probes[rnd(probes.len())];
        let src = format!("{}{pa}{}{pb}{}", &base[..a], &base[a + 1..b], &base[b + 1..]);
        let parsed = mlp_syntax::parse(&src);
        if parsed.diagnostics.iter().any(|d| d.is_error()) || parsed.file.comments.len() != count + 2 { continue; }
        tried += 1;
        match mlp_fmt::format_source(&src) {
            Err(e) => { errs += 1; if errs < 4 { println!("ERR {e}\n{src}\n=== unchecked:\n{}", mlp_fmt::format_unchecked(&src)); } }
            Ok(out) => {
                let again = mlp_fmt::format_source(&out).unwrap();
                if again != out { bad += 1; if bad < 4 { println!("NONIDEM\n{src}\n---\n{out}\n---\n{again}"); } }
            }
        }
    }
    println!("tried {tried} errs {errs} nonidem {bad}");
}
