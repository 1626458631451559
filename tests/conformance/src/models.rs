//! Whole models through the interpreter: the committed blobs of
//! `tests/models`, read in place from flash. One case per model output.

use crate::{digest, Outcome};
use picocnn::learn::{FineTuner, TrainableSet};
use picocnn::model::{DType, Interpreter, Model};
use picocnn::Error;

/// A blob on a 16-byte boundary, as the reader wants it.
#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

static BRANCHY_I8: &Aligned<[u8]> = &Aligned(*include_bytes!("../../models/branchy_i8.pcnn"));
#[cfg(not(feature = "small-flash"))]
static BRANCHY_F32: &Aligned<[u8]> = &Aligned(*include_bytes!("../../models/branchy_f32.pcnn"));
#[cfg(not(feature = "small-flash"))]
static BRANCHY_F16: &Aligned<[u8]> = &Aligned(*include_bytes!("../../models/branchy_f16.pcnn"));
#[cfg(feature = "small-flash")]
static BRANCHY_F32: &Aligned<[u8]> = &Aligned([]);
#[cfg(feature = "small-flash")]
static BRANCHY_F16: &Aligned<[u8]> = &Aligned([]);
static LENET5_I8: &Aligned<[u8]> = &Aligned(*include_bytes!("../../models/lenet5_i8.pcnn"));
/// ResNet-8 (MLPerf Tiny's shape): its 50 KB arena is beyond the
/// small-flash (micro:bit) firmware's RAM.
#[cfg(not(feature = "small-flash"))]
static RESNET8_I8: &Aligned<[u8]> = &Aligned(*include_bytes!("../../models/resnet8_i8.pcnn"));
#[cfg(feature = "small-flash")]
static RESNET8_I8: &Aligned<[u8]> = &Aligned([]);
/// DS-CNN (MLPerf Tiny's keyword spotter): a 16 KB arena, also beyond the
/// micro:bit.
#[cfg(not(feature = "small-flash"))]
static DS_CNN_I8: &Aligned<[u8]> = &Aligned(*include_bytes!("../../models/ds_cnn_i8.pcnn"));
#[cfg(feature = "small-flash")]
static DS_CNN_I8: &Aligned<[u8]> = &Aligned([]);

/// Keras networks imported from TensorFlow Lite (`picocnn import`, the
/// files of `tests/models/tflite`): global average pooling (`MEAN`) and
/// DS-CNN (a 16 KB arena); left out of the micro:bit's flash, which
/// LeNet-5 fills. (The imported ResNet-8 runs the kernels of the ResNet-8
/// above, and would overflow the Cortex-M55's 512 KiB.)
#[cfg(not(feature = "small-flash"))]
static TFLITE_MEAN_I8: &Aligned<[u8]> =
    &Aligned(*include_bytes!("../../models/tflite_mean_int8.pcnn"));
#[cfg(feature = "small-flash")]
static TFLITE_MEAN_I8: &Aligned<[u8]> = &Aligned([]);
#[cfg(not(feature = "small-flash"))]
static TFLITE_DSCNN_I8: &Aligned<[u8]> =
    &Aligned(*include_bytes!("../../models/tflite_dscnn_int8.pcnn"));
#[cfg(feature = "small-flash")]
static TFLITE_DSCNN_I8: &Aligned<[u8]> = &Aligned([]);
/// A 16x8 depthwise-separable network (int16 activations).
#[cfg(not(feature = "small-flash"))]
static TFLITE_DSCONV_16X8: &Aligned<[u8]> =
    &Aligned(*include_bytes!("../../models/tflite_dsconv_16x8.pcnn"));
#[cfg(feature = "small-flash")]
static TFLITE_DSCONV_16X8: &Aligned<[u8]> = &Aligned([]);

/// `(case name prefix, blob, outputs)`.
static MODELS: [(&str, &Aligned<[u8]>, usize); 9] = [
    ("model_branchy_i8", BRANCHY_I8, 2),
    ("model_branchy_f32", BRANCHY_F32, 2),
    ("model_branchy_f16", BRANCHY_F16, 2),
    ("model_lenet5_i8", LENET5_I8, 1),
    ("model_resnet8_i8", RESNET8_I8, 1),
    ("model_ds_cnn_i8", DS_CNN_I8, 1),
    ("model_tflite_mean_i8", TFLITE_MEAN_I8, 1),
    ("model_tflite_dscnn_i8", TFLITE_DSCNN_I8, 1),
    ("model_tflite_dsconv_16x8", TFLITE_DSCONV_16X8, 1),
];

const NAMES: [[&str; 2]; 9] = [
    ["model_branchy_i8_out0", "model_branchy_i8_out1"],
    ["model_branchy_f32_out0", "model_branchy_f32_out1"],
    ["model_branchy_f16_out0", "model_branchy_f16_out1"],
    ["model_lenet5_i8_out0", ""],
    ["model_resnet8_i8_out0", ""],
    ["model_ds_cnn_i8_out0", ""],
    ["model_tflite_mean_i8_out0", ""],
    ["model_tflite_dscnn_i8_out0", ""],
    ["model_tflite_dsconv_16x8_out0", ""],
];

pub fn case_count() -> usize {
    MODELS.iter().map(|m| m.2).sum::<usize>() + 1
}

/// Name of the fine-tuning case.
const FINETUNE: &str = "learn_lenet5_i8_finetune_4_steps";

/// Four fine-tuning steps of LeNet-5's last dense layer and every bias
/// below it (the backward pass through dense, max pooling and
/// convolution) on SplitMix64 inputs: the digest of the tuned parameters.
fn finetune(arena: &mut [u8]) -> Result<Option<(u32, usize)>, Error> {
    let model = Model::parse(&LENET5_I8.0)?;
    let set = TrainableSet::Last {
        weights: 1,
        biases: usize::MAX,
    };
    let (run_len, train_len) = (model.arena_len(), FineTuner::train_len_for(&model, set)?);
    let needed = run_len + train_len;
    if needed > arena.len() {
        return Ok(None);
    }
    let (run, rest) = arena.split_at_mut(run_len);
    let mut tuner = FineTuner::with_set(&model, set, run, &mut rest[..train_len], 0.01, 42)?;
    let mut s = 0x0007_eac4_u64;
    for step in 0..4 {
        for v in tuner.input_mut::<i8>()?.iter_mut() {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            *v = (s >> 56) as i8;
        }
        tuner.step(step % 10)?;
    }
    Ok(Some((tuner.digest(), needed)))
}

/// SplitMix64 inputs, identical on every target.
fn fill(model: &Model<'_>, interp: &mut Interpreter<'_, '_>) -> Result<(), Error> {
    let mut s = 0x5eed_u64;
    let mut next = move || {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let t = model.tensor(model.input(0).unwrap_or(0));
    match t.dtype {
        DType::I8 => interp
            .input_mut::<i8>(0)?
            .iter_mut()
            .for_each(|v| *v = next() as i8),
        DType::F32 => interp
            .input_mut::<f32>(0)?
            .iter_mut()
            .for_each(|v| *v = (next() >> 40) as f32 / 16_777_216.0),
        DType::I16 if DType::I16.built() => interp
            .input_mut::<i16>(0)?
            .iter_mut()
            .for_each(|v| *v = next() as i16),
        DType::I16 => return Err(DType::I16.not_built_error()),
        DType::F16 => interp
            .input_mut::<half::f16>(0)?
            .iter_mut()
            .for_each(|v| *v = half::f16::from_f32((next() >> 40) as f32 / 16_777_216.0)),
    }
    Ok(())
}

fn output_bytes<'x>(
    model: &Model<'_>,
    interp: &'x Interpreter<'_, '_>,
    k: usize,
) -> Result<&'x [u8], Error> {
    let t = model.tensor(model.output(k).unwrap_or(0));
    Ok(match t.dtype {
        DType::I8 => crate::bump::bytes(interp.output::<i8>(k)?),
        DType::F32 => crate::bump::bytes(interp.output::<f32>(k)?),
        DType::I16 if DType::I16.built() => crate::bump::bytes(interp.output::<i16>(k)?),
        DType::I16 => return Err(DType::I16.not_built_error()),
        DType::F16 => crate::bump::bytes(interp.output::<half::f16>(k)?),
    })
}

pub fn run_all(arena: &mut [u8], report: &mut dyn FnMut(&Outcome<'_>)) {
    for (m, &(_, blob, outputs)) in MODELS.iter().enumerate() {
        if blob.0.is_empty() {
            // Left out of this firmware (small-flash).
            for name in NAMES[m].iter().take(outputs) {
                report(&Outcome {
                    name,
                    digest: 0,
                    matches_expected: None,
                    error: None,
                    arena_needed: usize::MAX,
                    skipped: true,
                });
            }
            continue;
        }
        let result = Model::parse(&blob.0).and_then(|model| {
            let needed = model.arena_len();
            if needed > arena.len() {
                return Ok((model, needed, None));
            }
            let mut interp = Interpreter::new(&model, arena)?;
            fill(&model, &mut interp)?;
            interp.run()?;
            let mut digests = [0u32; 2];
            for (k, d) in digests.iter_mut().enumerate().take(outputs) {
                *d = digest(output_bytes(&model, &interp, k)?);
            }
            Ok((model, needed, Some(digests)))
        });
        for (k, name) in NAMES[m].iter().enumerate().take(outputs) {
            let outcome = match &result {
                Ok((_, needed, Some(d))) => Outcome {
                    name,
                    digest: d[k],
                    matches_expected: None,
                    error: None,
                    arena_needed: *needed,
                    skipped: false,
                },
                Ok((_, needed, None)) => Outcome {
                    name,
                    digest: 0,
                    matches_expected: None,
                    error: None,
                    arena_needed: *needed,
                    skipped: true,
                },
                Err(e) => Outcome {
                    name,
                    digest: 0,
                    matches_expected: Some(false),
                    error: Some(*e),
                    arena_needed: 0,
                    skipped: false,
                },
            };
            report(&outcome);
        }
    }
    let outcome = match finetune(arena) {
        Ok(Some((d, needed))) => Outcome {
            name: FINETUNE,
            digest: d,
            matches_expected: None,
            error: None,
            arena_needed: needed,
            skipped: false,
        },
        Ok(None) => Outcome {
            name: FINETUNE,
            digest: 0,
            matches_expected: None,
            error: None,
            arena_needed: usize::MAX,
            skipped: true,
        },
        Err(e) => Outcome {
            name: FINETUNE,
            digest: 0,
            matches_expected: Some(false),
            error: Some(e),
            arena_needed: 0,
            skipped: false,
        },
    };
    report(&outcome);
}
