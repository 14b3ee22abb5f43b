//! mlp's compute layer: a backend trait with a CPU implementation (ndarray + rayon) and a GPU
//! implementation (wgpu, one WGSL file per kernel), the ops both implement forward and
//! backward, the layer graph with its static forward/backward schedules, the trace autoencoder
//! and U-Net models, and training with safetensors checkpoints.

pub mod backend;
pub mod bench;
pub mod cpu;
pub mod error;
pub mod gpu;
pub mod graph;
pub mod model;
pub mod op;
pub mod select;
pub mod train;

pub use backend::{Backend, BufId, DeviceKind, Tensor};
pub use error::{ComputeError, Result};
pub use op::{Activation, Op, Padding, Shape};
