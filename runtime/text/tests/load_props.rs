//! Loaders never panic on arbitrary bytes, and accept exactly valid text.

use std::path::Path;

use mlp_text::load::{decode, parse_bytes, Format};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let p = Path::new("x");
        for f in [
            Format::Text,
            Format::Markdown,
            Format::Html,
            Format::JsonLines { field: "text".into() },
            Format::Pdf,
        ] {
            let _ = parse_bytes(p, &bytes, &f);
        }
    }

    #[test]
    fn valid_utf8_without_nul_round_trips(text in "[^\u{0}\u{feff}]{0,200}") {
        prop_assert_eq!(decode(Path::new("x"), text.as_bytes()).unwrap(), text);
    }

    #[test]
    fn arbitrary_html_never_panics(html in "(<[a-z]{1,6}>|</[a-z]{1,6}>|[^<]{0,10}|<script>|</script>){0,30}") {
        let _ = mlp_text::load::html_text(&html);
    }
}
