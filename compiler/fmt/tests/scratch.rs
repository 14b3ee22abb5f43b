#[test]
fn scratch() {
    let src = std::fs::read_to_string("/tmp/in.mlp").unwrap();
    match mlp_fmt::format_source(&src) {
        Ok(o) => {
            println!("{o}-----");
            let o2 = mlp_fmt::format_source(&o).unwrap();
            if o2 != o { println!("NOT IDEMPOTENT:\n{o2}"); }
        }
        Err(e) => println!("ERR {e}\n{}", mlp_fmt::format_unchecked(&src)),
    }
}
