//! What several subcommands share: reading blobs and data, running one
//! image, the zoo's names, writing files.

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use picocnn::data::{load_image_folder, load_mnist, Dataset};
use picocnn::model::writer::AlignedBytes;
use picocnn::model::{DType, Interpreter, Model, TensorInfo};
use picocnn::train::{zoo, Net};
use std::path::{Path, PathBuf};

/// Errors as one line that says what failed: `what: error`.
pub trait At<T> {
    /// The error's message after `what` and a colon.
    fn at(self, what: impl std::fmt::Display) -> Result<T>;
}

impl<T, E: std::fmt::Display> At<T> for std::result::Result<T, E> {
    fn at(self, what: impl std::fmt::Display) -> Result<T> {
        self.map_err(|e| anyhow::anyhow!("{what}: {e}"))
    }
}

/// A blob read from `path` on a 16-byte boundary.
pub fn read_blob(path: &Path) -> Result<AlignedBytes> {
    let bytes = std::fs::read(path).at(path.display())?;
    Ok(AlignedBytes::from(bytes))
}

/// `blob` parsed, or an error naming `path`.
pub fn parse_model<'b>(blob: &'b AlignedBytes, path: &Path) -> Result<Model<'b>> {
    Model::parse(blob.as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: not a model ({e})", path.display()))
}

pub fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::I8 => "int8",
        DType::I16 => "int16",
        DType::F16 => "f16",
        DType::F32 => "f32",
    }
}

/// Raw pixels `img` as the int8 input `x` of tensor `info`, through the
/// model's normalisation `norm`.
pub fn to_int8(info: TensorInfo, norm: (f32, f32), img: &[u8], x: &mut [i8]) -> Result<()> {
    let q = info.qparams.context("int8 input without quantization")?;
    x.iter_mut()
        .zip(img)
        .for_each(|(d, &p)| *d = q.quantize(p as f32 * norm.0 + norm.1));
    Ok(())
}

/// Runs `model` on image `img` (raw 0..255 pixels); returns the class
/// probabilities.
pub fn classify(
    it: &mut Interpreter<'_, '_>,
    info: TensorInfo,
    norm: (f32, f32),
    img: &[u8],
) -> Result<Vec<f32>> {
    let real = |p: u8| p as f32 * norm.0 + norm.1;
    match info.dtype {
        DType::I8 => to_int8(info, norm, img, it.input_mut::<i8>(0)?)?,
        DType::I16 => {
            let q = info.qparams.context("int16 input without quantization")?;
            let x = it.input_mut::<i16>(0)?;
            x.iter_mut()
                .zip(img)
                .for_each(|(d, &p)| *d = q.quantize_i16(real(p)));
        }
        DType::F16 => {
            let x = it.input_mut::<half::f16>(0)?;
            x.iter_mut()
                .zip(img)
                .for_each(|(d, &p)| *d = half::f16::from_f32(real(p)));
        }
        DType::F32 => {
            let x = it.input_mut::<f32>(0)?;
            x.iter_mut().zip(img).for_each(|(d, &p)| *d = real(p));
        }
    }
    it.run()?;
    let out = it.model().output(0).context("model without output")?;
    let oinfo = it.model().tensor(out);
    Ok(match oinfo.dtype {
        DType::I8 => {
            let q = oinfo.qparams.context("int8 output without quantization")?;
            it.output::<i8>(0)?
                .iter()
                .map(|&v| q.dequantize(v))
                .collect()
        }
        DType::I16 => {
            let q = oinfo.qparams.context("int16 output without quantization")?;
            it.output::<i16>(0)?
                .iter()
                .map(|&v| q.dequantize_i16(v))
                .collect()
        }
        DType::F16 => it
            .output::<half::f16>(0)?
            .iter()
            .map(|v| v.to_f32())
            .collect(),
        DType::F32 => it.output::<f32>(0)?.to_vec(),
    })
}

/// The training and test sets in `dir`: MNIST IDX files, or `train/` and
/// `test/` folders of class folders of PNGs.
pub fn load_data(dir: &Path) -> Result<(Dataset, Dataset)> {
    if dir.join("train").is_dir() && dir.join("test").is_dir() {
        let train = load_image_folder(dir.join("train"))?;
        let test = load_image_folder(dir.join("test"))?;
        if train.shape() != test.shape() || train.class_names() != test.class_names() {
            bail!(
                "{}: train and test images differ in size or classes",
                dir.display()
            );
        }
        return Ok((train, test));
    }
    Ok(load_mnist(dir)?)
}

/// What `finetune` and its float reference `finetune-f32` share, so that
/// the two see the same images, rate and passes.
#[derive(clap::Args)]
pub struct TuneArgs {
    /// Labelled images: the training ones tune, the test ones measure.
    #[arg(long)]
    pub data: PathBuf,
    /// Passes over the training images, in order, one image per step.
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Learning rate of plain SGD (the integer steps follow the float
    /// update).
    #[arg(long, default_value_t = 0.003)]
    pub lr: f32,
    /// Tune on at most this many training images (all by default).
    #[arg(long)]
    pub limit: Option<usize>,
}

impl TuneArgs {
    /// The training and test images, after checking the rate.
    pub fn load(&self) -> Result<(Dataset, Dataset)> {
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            bail!("--lr must be a positive number, not {}", self.lr);
        }
        load_data(&self.data)
    }

    /// Training images to tune on, of `available`.
    pub fn count(&self, available: usize) -> usize {
        self.limit.unwrap_or(available).min(available)
    }
}

/// The zoo's architectures.
#[derive(Clone, Copy, ValueEnum)]
pub enum Arch {
    Lenet5,
    AlexnetMini,
    VggMini,
    InceptionMini,
    Resnet8,
}

impl Arch {
    const ALL: [Arch; 5] = [
        Arch::Lenet5,
        Arch::AlexnetMini,
        Arch::VggMini,
        Arch::InceptionMini,
        Arch::Resnet8,
    ];

    /// The name in checkpoints' metadata.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Lenet5 => "lenet5",
            Arch::AlexnetMini => "alexnet_mini",
            Arch::VggMini => "vgg_mini",
            Arch::InceptionMini => "inception_mini",
            Arch::Resnet8 => "resnet8",
        }
    }

    /// The architecture called `name` in checkpoints' metadata.
    pub fn from_name(name: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|&m| m.name() == name)
    }

    /// A fresh network for `data`'s images and classes.
    pub fn build(self, data: &Dataset, seed: u64) -> Result<Net> {
        let f = match self {
            Arch::Lenet5 => zoo::lenet5,
            Arch::AlexnetMini => zoo::alexnet_mini,
            Arch::VggMini => zoo::vgg_mini,
            Arch::InceptionMini => zoo::inception_mini,
            Arch::Resnet8 => zoo::resnet8,
        };
        f(data.shape(), data.classes(), seed).at(format_args!(
            "cannot build the model for {} images",
            data.shape()
        ))
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it, so
/// that `path` is never half written.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).at(tmp.display())?;
    std::fs::rename(&tmp, path).at(path.display())
}

/// A count of layers, or `all`.
pub fn parse_layers(s: &str) -> Result<usize, String> {
    if s == "all" {
        return Ok(usize::MAX);
    }
    s.parse()
        .map_err(|_| format!("expected a number of layers or `all`, not `{s}`"))
}
