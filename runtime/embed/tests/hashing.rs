//! The hashing embedder: fixed values (the same on every platform and run), normalisation,
//! n-grams, empty text.

use mlp_embed::hashing::{bucket, words};
use mlp_embed::{cosine, Embedder, HashingEmbedder};

#[test]
fn buckets_are_fixed() {
    // Pinned: a change here changes every stored index (bump the scheme version instead).
    let got: Vec<(usize, bool)> = ["hello", "world", "hello world", "seismic"]
        .iter()
        .map(|g| bucket(g.as_bytes(), 384))
        .collect();
    assert_eq!(got, PINNED);
    // The whole vector of a small embedder: 1-grams "hello", "world" and the 2-gram.
    let h = HashingEmbedder::new(384, (1, 2)).unwrap();
    let v = h.embed_one("Hello World").vector;
    let s = 1.0 / 3f32.sqrt();
    let mut want = vec![0f32; 384];
    want[294] = s;
    want[168] = s;
    want[73] = -s;
    assert_eq!(v, want);
}

const PINNED: [(usize, bool); 4] = [(294, false), (168, false), (73, true), (171, true)];

#[test]
fn vectors_are_unit_and_deterministic() {
    let h = HashingEmbedder::new(384, (1, 2)).unwrap();
    assert_eq!(h.id(), "hashing:v1:dim=384:ngrams=1-2");
    assert_eq!(h.max_tokens(), None);
    let texts = [
        "Hello world",
        "hello, WORLD!",
        "Faults cut the horizon.",
        "",
    ];
    let a = h.embed(&texts).unwrap();
    let b = h.embed(&texts).unwrap();
    assert_eq!(a, b);
    for e in &a[..3] {
        let n: f64 = e
            .vector
            .iter()
            .map(|&x| (x as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((n - 1.0).abs() < 1e-6, "{n}");
        assert!(!e.truncated);
    }
    // Case and punctuation do not matter.
    assert_eq!(a[0].vector, a[1].vector);
    assert_eq!(a[0].tokens, 2);
    // Empty text: the zero vector, no tokens.
    assert!(a[3].vector.iter().all(|&x| x == 0.0));
    assert_eq!(a[3].tokens, 0);
    assert_eq!(h.count_tokens("Hello, world!"), 2);
    assert_eq!(h.tokenizer().count_tokens("one two three"), 3);
}

#[test]
fn ngram_orders_matter() {
    let uni = HashingEmbedder::new(1024, (1, 1)).unwrap();
    let bi = HashingEmbedder::new(1024, (1, 2)).unwrap();
    let (x, y) = ("dog bites man", "man bites dog");
    let u = uni.embed(&[x, y]).unwrap();
    assert!((cosine(&u[0].vector, &u[1].vector) - 1.0).abs() < 1e-9);
    let b = bi.embed(&[x, y]).unwrap();
    assert!(cosine(&b[0].vector, &b[1].vector) < 0.9);
    let only_bi = HashingEmbedder::new(1024, (2, 2)).unwrap();
    let one = only_bi.embed(&["single"]).unwrap();
    assert!(
        one[0].vector.iter().all(|&x| x == 0.0),
        "no bigram in one word"
    );
    assert_eq!(only_bi.id(), "hashing:v1:dim=1024:ngrams=2-2");
}

#[test]
fn similar_texts_are_closer() {
    let h = HashingEmbedder::new(384, (1, 2)).unwrap();
    let e = h
        .embed(&[
            "the fault cuts the seismic horizon",
            "a fault cuts that seismic horizon",
            "quarterly steel prices rose",
        ])
        .unwrap();
    assert!(cosine(&e[0].vector, &e[1].vector) > cosine(&e[0].vector, &e[2].vector));
}

#[test]
fn bad_parameters_are_errors() {
    assert!(HashingEmbedder::new(0, (1, 2)).is_err());
    assert!(HashingEmbedder::new(8, (0, 2)).is_err());
    assert!(HashingEmbedder::new(8, (3, 2)).is_err());
    assert!(HashingEmbedder::new(8, (1, 17)).is_err());
    let e = HashingEmbedder::new(8, (3, 2)).unwrap_err().to_string();
    assert!(e.contains("3-2"), "{e}");
}

#[test]
fn words_are_unicode_aware() {
    assert_eq!(words("Ünïcödé WORDS, ok?"), ["ünïcödé", "words", "ok"]);
    assert_eq!(words("İstanbul"), ["i̇stanbul"]);
    assert_eq!(words("北海 survey"), ["北", "海", "survey"]);
}
