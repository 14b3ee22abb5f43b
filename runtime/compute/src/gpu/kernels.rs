//! The WGSL kernels, one file per op (`kernels/*.wgsl`), compiled into the binary.

/// Every kernel file: `(file name, WGSL source)`.
pub static KERNELS: &[(&str, &str)] = &[
    (
        "activation.wgsl",
        include_str!("../../kernels/activation.wgsl"),
    ),
    (
        "activation_backward.wgsl",
        include_str!("../../kernels/activation_backward.wgsl"),
    ),
    ("adam.wgsl", include_str!("../../kernels/adam.wgsl")),
    ("add.wgsl", include_str!("../../kernels/add.wgsl")),
    (
        "add_scaled.wgsl",
        include_str!("../../kernels/add_scaled.wgsl"),
    ),
    (
        "attention.wgsl",
        include_str!("../../kernels/attention.wgsl"),
    ),
    (
        "batchnorm_backward.wgsl",
        include_str!("../../kernels/batchnorm_backward.wgsl"),
    ),
    (
        "batchnorm_eval.wgsl",
        include_str!("../../kernels/batchnorm_eval.wgsl"),
    ),
    (
        "batchnorm_train.wgsl",
        include_str!("../../kernels/batchnorm_train.wgsl"),
    ),
    (
        "bce_with_logits.wgsl",
        include_str!("../../kernels/bce_with_logits.wgsl"),
    ),
    ("bias_add.wgsl", include_str!("../../kernels/bias_add.wgsl")),
    (
        "bias_grad.wgsl",
        include_str!("../../kernels/bias_grad.wgsl"),
    ),
    (
        "concat_channels.wgsl",
        include_str!("../../kernels/concat_channels.wgsl"),
    ),
    ("conv2d.wgsl", include_str!("../../kernels/conv2d.wgsl")),
    (
        "conv2d_backward_input.wgsl",
        include_str!("../../kernels/conv2d_backward_input.wgsl"),
    ),
    (
        "conv2d_backward_weight.wgsl",
        include_str!("../../kernels/conv2d_backward_weight.wgsl"),
    ),
    (
        "conv2d_fast_32.wgsl",
        include_str!("../../kernels/conv2d_fast_32.wgsl"),
    ),
    (
        "conv2d_fast_64.wgsl",
        include_str!("../../kernels/conv2d_fast_64.wgsl"),
    ),
    (
        "conv2d_fast_128.wgsl",
        include_str!("../../kernels/conv2d_fast_128.wgsl"),
    ),
    (
        "conv2d_backward_input_fast_32.wgsl",
        include_str!("../../kernels/conv2d_backward_input_fast_32.wgsl"),
    ),
    (
        "conv2d_backward_input_fast_64.wgsl",
        include_str!("../../kernels/conv2d_backward_input_fast_64.wgsl"),
    ),
    (
        "conv2d_backward_input_fast_128.wgsl",
        include_str!("../../kernels/conv2d_backward_input_fast_128.wgsl"),
    ),
    (
        "conv2d_backward_weight_fast_32.wgsl",
        include_str!("../../kernels/conv2d_backward_weight_fast_32.wgsl"),
    ),
    (
        "conv2d_backward_weight_fast_64.wgsl",
        include_str!("../../kernels/conv2d_backward_weight_fast_64.wgsl"),
    ),
    (
        "conv2d_backward_weight_fast_128.wgsl",
        include_str!("../../kernels/conv2d_backward_weight_fast_128.wgsl"),
    ),
    (
        "dice_loss.wgsl",
        include_str!("../../kernels/dice_loss.wgsl"),
    ),
    ("dropout.wgsl", include_str!("../../kernels/dropout.wgsl")),
    (
        "embedding.wgsl",
        include_str!("../../kernels/embedding.wgsl"),
    ),
    (
        "layernorm.wgsl",
        include_str!("../../kernels/layernorm.wgsl"),
    ),
    (
        "layernorm_backward.wgsl",
        include_str!("../../kernels/layernorm_backward.wgsl"),
    ),
    ("matmul.wgsl", include_str!("../../kernels/matmul.wgsl")),
    (
        "matmul_big.wgsl",
        include_str!("../../kernels/matmul_big.wgsl"),
    ),
    (
        "matmul_fast.wgsl",
        include_str!("../../kernels/matmul_fast.wgsl"),
    ),
    (
        "matmul_fast_64x64.wgsl",
        include_str!("../../kernels/matmul_fast_64x64.wgsl"),
    ),
    (
        "matmul_fast_128x128.wgsl",
        include_str!("../../kernels/matmul_fast_128x128.wgsl"),
    ),
    (
        "matmul_fast_128x256.wgsl",
        include_str!("../../kernels/matmul_fast_128x256.wgsl"),
    ),
    (
        "matmul_fast_256x128.wgsl",
        include_str!("../../kernels/matmul_fast_256x128.wgsl"),
    ),
    ("maxpool2.wgsl", include_str!("../../kernels/maxpool2.wgsl")),
    (
        "maxpool2_backward.wgsl",
        include_str!("../../kernels/maxpool2_backward.wgsl"),
    ),
    ("mse_loss.wgsl", include_str!("../../kernels/mse_loss.wgsl")),
    ("mul.wgsl", include_str!("../../kernels/mul.wgsl")),
    (
        "reduce_splits.wgsl",
        include_str!("../../kernels/reduce_splits.wgsl"),
    ),
    ("scale.wgsl", include_str!("../../kernels/scale.wgsl")),
    ("sgd.wgsl", include_str!("../../kernels/sgd.wgsl")),
    ("softmax.wgsl", include_str!("../../kernels/softmax.wgsl")),
    (
        "softmax_backward.wgsl",
        include_str!("../../kernels/softmax_backward.wgsl"),
    ),
    (
        "split_channels.wgsl",
        include_str!("../../kernels/split_channels.wgsl"),
    ),
    ("sum_all.wgsl", include_str!("../../kernels/sum_all.wgsl")),
    (
        "upsample2.wgsl",
        include_str!("../../kernels/upsample2.wgsl"),
    ),
    (
        "upsample2_backward.wgsl",
        include_str!("../../kernels/upsample2_backward.wgsl"),
    ),
];

/// Kernels created without wgpu's runtime bounds checks: their host code checks
/// preconditions under which every index is in range (see each file's header).
pub const UNCHECKED: &[&str] = &[
    "matmul_fast.wgsl",
    "matmul_fast_64x64.wgsl",
    "matmul_fast_128x128.wgsl",
    "matmul_fast_128x256.wgsl",
    "matmul_fast_256x128.wgsl",
    "conv2d_fast_32.wgsl",
    "conv2d_fast_64.wgsl",
    "conv2d_fast_128.wgsl",
    "conv2d_backward_input_fast_32.wgsl",
    "conv2d_backward_input_fast_64.wgsl",
    "conv2d_backward_input_fast_128.wgsl",
    "conv2d_backward_weight_fast_32.wgsl",
    "conv2d_backward_weight_fast_64.wgsl",
    "conv2d_backward_weight_fast_128.wgsl",
];

/// Kernels that declare more workgroup memory than WebGPU's default limit (16384 bytes), with
/// the bytes they declare (gen/gemm.py prints them). The host dispatches them only on devices
/// that offer as much; `tests/naga.rs` checks these figures against the modules.
pub const LARGE_WORKGROUP_MEMORY: &[(&str, u32)] = &[
    ("matmul_fast_128x128.wgsl", 16896),
    ("matmul_fast_128x256.wgsl", 25088),
    ("matmul_fast_256x128.wgsl", 25088),
    ("conv2d_fast_128.wgsl", 16640),
    ("conv2d_backward_input_fast_128.wgsl", 16640),
    ("conv2d_backward_weight_fast_128.wgsl", 16896),
];

/// The workgroup memory a kernel needs from the device: its entry in
/// [`LARGE_WORKGROUP_MEMORY`], else WebGPU's default limit (which every other kernel fits).
pub fn workgroup_bytes(name: &str) -> u32 {
    LARGE_WORKGROUP_MEMORY
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(16384, |&(_, b)| b)
}

/// The source of a kernel file (panics on a name missing from [`KERNELS`], a programming error
/// caught by every test that dispatches the op).
pub fn source(name: &str) -> &'static str {
    KERNELS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .unwrap_or_else(|| panic!("no kernel file {name}"))
}
