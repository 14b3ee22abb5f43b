//! Distance metrics.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::VectorError;

/// How vectors are compared. See `spec/vector-index.md` for the exact definitions.
///
/// | metric | `Hit::distance` (smaller is closer) | `Hit::score` (larger is better) |
/// |--------|-------------------------------------|---------------------------------|
/// | `Cosine` | `1 - cos(q, x)` | `cos(q, x)` |
/// | `Dot` | `-(q · x)` | `q · x` |
/// | `L2` | `‖q - x‖₂` (Euclidean, not squared) | `-‖q - x‖₂` |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Cosine similarity; vectors are normalised to unit length when they enter the index.
    Cosine,
    /// Inner product (maximum inner product search).
    Dot,
    /// Euclidean distance.
    L2,
}

impl Metric {
    /// The lowercase name (`cosine`, `dot`, `l2`).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Dot => "dot",
            Metric::L2 => "l2",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = VectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cosine" | "cos" => Ok(Metric::Cosine),
            "dot" | "ip" | "inner_product" => Ok(Metric::Dot),
            "l2" | "euclidean" => Ok(Metric::L2),
            other => Err(VectorError::Invalid(format!(
                "unknown metric `{other}` (expected cosine, dot or l2)"
            ))),
        }
    }
}
