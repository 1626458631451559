//! `picocnn run`: raw tensors from a NumPy `.npy` file through a model
//! blob, the outputs written as `.npy`.

use crate::common::{parse_model, read_blob, write_atomically};
use anyhow::{bail, Context, Result};
use half::f16;
use npyz::WriterBuilder;
use picocnn::model::{batch, DType, Element, Model, TensorInfo};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The model blob (one input and one output).
    #[arg(long)]
    model: PathBuf,
    /// Inputs: an `.npy` array of the model's input type (int8, float16 or
    /// float32), batch first, each item the input tensor in NHWC order
    /// (shape `[N, H, W, C]`, `[H, W, C]` for one, or `[N, H*W*C]`).
    #[arg(long)]
    input: PathBuf,
    /// Where to write the outputs: `[N, C]` for a 1x1xC output tensor,
    /// `[N, H, W, C]` otherwise, in the model's output type.
    #[arg(long)]
    output: PathBuf,
    /// Threads to split the batch over (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// NumPy's name of a tensor type, as `dtype=` takes it.
fn numpy_name(d: DType) -> &'static str {
    match d {
        DType::I8 => "int8",
        DType::I16 => "int16",
        DType::F16 => "float16",
        DType::F32 => "float32",
    }
}

/// How many items `shape` holds of a tensor of shape `t`, or why it does
/// not fit.
fn items(shape: &[u64], t: &TensorInfo) -> Result<usize> {
    let s = t.shape;
    let len = s.len() as u64;
    let want = [s.h as u64, s.w as u64, s.c as u64];
    match shape {
        [h, w, c] if [*h, *w, *c] == want => Ok(1),
        [n, h, w, c] if [*h, *w, *c] == want => Ok(*n as usize),
        [n, flat] if *flat == len => Ok(*n as usize),
        _ => bail!(
            "shape {shape:?} does not hold the model's input {}x{}x{} ({len} values): give \
             [N, {}, {}, {}], [{}, {}, {}] or [N, {len}]",
            s.h,
            s.w,
            s.c,
            s.h,
            s.w,
            s.c,
            s.h,
            s.w,
            s.c
        ),
    }
}

fn go<I, O>(model: &Model<'_>, npy: npyz::NpyFile<&[u8]>, a: &RunArgs) -> Result<()>
where
    I: Element + Sync + npyz::Deserialize,
    O: Element + Send + npyz::Serialize + npyz::AutoSerialize,
{
    let t_in = model.tensor(model.input(0).context("model without input")?);
    let t_out = model.tensor(model.output(0).context("model without output")?);
    let n = items(npy.shape(), &t_in).map_err(|e| anyhow::anyhow!("{}: {e}", a.input.display()))?;
    let x: Vec<I> = npy
        .into_vec()
        .with_context(|| format!("{}: reading the array", a.input.display()))?;
    let per = t_out.shape.len();
    let mut y = vec![O::zeroed(); n * per];
    batch::run::<I, O>(model, &x, &mut y, a.threads)?;
    let s = t_out.shape;
    let shape: Vec<u64> = if s.h == 1 && s.w == 1 {
        vec![n as u64, s.c as u64]
    } else {
        vec![n as u64, s.h as u64, s.w as u64, s.c as u64]
    };
    let mut bytes = Vec::new();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut bytes)
        .begin_nd()?;
    w.extend(y.iter().copied())?;
    w.finish()?;
    write_atomically(&a.output, &bytes)?;
    out!(
        "{}: {n} item{} through {} ({}), outputs {:?} {} written to {}",
        a.input.display(),
        if n == 1 { "" } else { "s" },
        a.model.display(),
        picocnn::kernel_path(),
        shape,
        numpy_name(t_out.dtype),
        a.output.display()
    );
    Ok(())
}

pub fn run(a: RunArgs) -> Result<()> {
    let blob = read_blob(&a.model)?;
    let model = parse_model(&blob, &a.model)?;
    if model.input_count() != 1 || model.output_count() != 1 {
        bail!(
            "{}: {} inputs and {} outputs; `run` takes models with one of each",
            a.model.display(),
            model.input_count(),
            model.output_count()
        );
    }
    let t_in = model.tensor(model.input(0).context("model without input")?);
    let t_out = model.tensor(model.output(0).context("model without output")?);
    let bytes =
        std::fs::read(&a.input).with_context(|| format!("reading {}", a.input.display()))?;
    let npy = npyz::NpyFile::new(&bytes[..])
        .with_context(|| format!("{}: not a NumPy .npy file", a.input.display()))?;
    if npy.order() == npyz::Order::Fortran {
        bail!(
            "{}: the array is in Fortran order; save a C-ordered one (np.ascontiguousarray)",
            a.input.display()
        );
    }
    let descr = npy.dtype().descr();
    let descr = descr.trim_matches('\'');
    let want = match t_in.dtype {
        DType::I8 => ["|i1", "<i1", ">i1"].contains(&descr),
        DType::I16 => descr == "<i2",
        DType::F16 => descr == "<f2",
        DType::F32 => descr == "<f4",
    };
    if !want {
        bail!(
            "{}: the array's type is {descr:?}; the model's input is {}: save it with dtype=np.{}",
            a.input.display(),
            numpy_name(t_in.dtype),
            numpy_name(t_in.dtype)
        );
    }
    match (t_in.dtype, t_out.dtype) {
        (DType::I8, DType::I8) => go::<i8, i8>(&model, npy, &a),
        (DType::I8, DType::F32) => go::<i8, f32>(&model, npy, &a),
        (DType::F32, DType::F32) => go::<f32, f32>(&model, npy, &a),
        (DType::F32, DType::I8) => go::<f32, i8>(&model, npy, &a),
        (DType::F16, DType::F16) => go::<f16, f16>(&model, npy, &a),
        (DType::I16, DType::I16) => go::<i16, i16>(&model, npy, &a),
        (DType::I16, DType::F32) => go::<i16, f32>(&model, npy, &a),
        (DType::F32, DType::I16) => go::<f32, i16>(&model, npy, &a),
        (i, o) => bail!(
            "{}: input {} and output {}: not a pair `run` writes",
            a.model.display(),
            numpy_name(i),
            numpy_name(o)
        ),
    }
}
