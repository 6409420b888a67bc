//! The one table of embedded WGSL sources.
//!
//! Every shader family lives in one file under `shaders/` and is compiled
//! into the binary here with `include_str!`: nothing is read from disk at run
//! time. Shapes never appear in WGSL text; they travel in each dispatch's
//! params uniform. Only tile sizes and a few flags are `override` constants.

/// A shader family: one `.wgsl` file in `shaders/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shader {
    /// `shaders/conv2d.wgsl`: tiled implicit-GEMM convolution with fused epilogue.
    Conv2d,
    /// `shaders/batchnorm.wgsl`: inference batchnorm with optional ReLU.
    BatchNorm,
    /// `shaders/elementwise.wgsl`: scaled add with optional ReLU, ReLU alone.
    Elementwise,
    /// `shaders/pool.wgsl`: max, average and global-average pooling.
    Pool,
    /// `shaders/concat.wgsl`: channel-offset copy.
    Concat,
    /// `shaders/linear.wgsl`: fully connected layer with bias.
    Linear,
    /// `shaders/softmax.wgsl`: softmax over channels.
    Softmax,
    /// `shaders/layout.wgsl`: NCHW <-> NHWC transposes at the API boundary.
    Layout,
}

impl Shader {
    /// Every shader family, in file-name order.
    pub const ALL: [Shader; 8] = [
        Shader::BatchNorm,
        Shader::Concat,
        Shader::Conv2d,
        Shader::Elementwise,
        Shader::Layout,
        Shader::Linear,
        Shader::Pool,
        Shader::Softmax,
    ];

    /// The file name under `shaders/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Shader::Conv2d => "conv2d.wgsl",
            Shader::BatchNorm => "batchnorm.wgsl",
            Shader::Elementwise => "elementwise.wgsl",
            Shader::Pool => "pool.wgsl",
            Shader::Concat => "concat.wgsl",
            Shader::Linear => "linear.wgsl",
            Shader::Softmax => "softmax.wgsl",
            Shader::Layout => "layout.wgsl",
        }
    }

    /// The embedded WGSL source.
    pub fn source(self) -> &'static str {
        match self {
            Shader::Conv2d => include_str!("../shaders/conv2d.wgsl"),
            Shader::BatchNorm => include_str!("../shaders/batchnorm.wgsl"),
            Shader::Elementwise => include_str!("../shaders/elementwise.wgsl"),
            Shader::Pool => include_str!("../shaders/pool.wgsl"),
            Shader::Concat => include_str!("../shaders/concat.wgsl"),
            Shader::Linear => include_str!("../shaders/linear.wgsl"),
            Shader::Softmax => include_str!("../shaders/softmax.wgsl"),
            Shader::Layout => include_str!("../shaders/layout.wgsl"),
        }
    }
}
