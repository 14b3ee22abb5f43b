//! SEG-Y (revisions 0, 1, 2) and Seismic Unix files: reading, writing, geometry and synthetic
//! surveys.
//!
//! ```no_run
//! use mlp_segy::{OpenOptions, SegyFile};
//! let f = SegyFile::open("survey.sgy", &OpenOptions::default())?;
//! let cube = f.read_cube()?; // [il, xl, samples], float32
//! # Ok::<(), mlp_segy::SegyError>(())
//! ```

pub mod error;
pub mod file;
pub mod format;
pub mod geometry;
pub mod header;
pub mod npy;
pub mod report;
pub mod synth;
pub mod table;
pub mod tools;
pub mod write;

pub use error::{Result, SegyError};
pub use file::{FileKind, OpenOptions, SegyFile};
pub use format::{Endian, SampleFormat};
pub use geometry::{Geometry, Sorting};
pub use header::TextEncoding;
pub use write::{SegyWriter, WriteOptions};
