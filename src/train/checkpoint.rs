//! Checkpoints in safetensors: every parameter block and batch-norm
//! statistic under the layer's name, written to a temporary file and renamed.

use super::layers::Step;
use super::net::Net;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;
use std::string::{String, ToString};
use std::vec::Vec;

/// Why a checkpoint could not be written or read.
#[derive(Debug)]
pub enum CheckpointError {
    /// File system error, with the file.
    Io(String, std::io::Error),
    /// Not a safetensors file, or not one this network can load.
    Format(String, String),
}

impl std::fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckpointError::Io(path, e) => write!(f, "{path}: {e}"),
            CheckpointError::Format(path, what) => write!(f, "{path}: {what}"),
        }
    }
}

impl std::error::Error for CheckpointError {}

/// Name, shape, and where the values are (`true`: parameters, `false`: statistics).
pub(crate) fn tensors(net: &Net) -> Vec<(String, Vec<usize>, bool, usize, usize)> {
    let mut out = Vec::new();
    for (layer, node) in net.layers.iter().zip(&net.graph.nodes) {
        let n = &node.name;
        let (names, shapes, p) = match layer {
            Step::Conv(conv) => {
                let g = &conv.geom;
                let [kh, kw] = g.kernel();
                let (oc, cpg) = (g.output_shape().c, g.input_shape().c / g.groups());
                (
                    ["weight", "bias"],
                    [std::vec![oc, kh, kw, cpg], std::vec![oc]],
                    &conv.params,
                )
            }
            Step::Dense(d) => (
                ["weight", "bias"],
                [std::vec![d.n_out, d.n_in], std::vec![d.n_out]],
                &d.params,
            ),
            Step::BatchNorm(bn) => (
                ["gamma", "beta"],
                [std::vec![bn.c], std::vec![bn.c]],
                &bn.params,
            ),
            _ => continue,
        };
        for ((name, shape), at) in names.into_iter().zip(shapes).zip([&p.weight, &p.bias]) {
            out.push((std::format!("{n}.{name}"), shape, true, at.start, at.len()));
        }
        if let Step::BatchNorm(bn) = layer {
            for (what, at) in [("running_mean", &bn.mean), ("running_var", &bn.var)] {
                out.push((
                    std::format!("{n}.{what}"),
                    std::vec![bn.c],
                    false,
                    at.start,
                    bn.c,
                ));
            }
        }
    }
    out
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The metadata of the checkpoint at `path` (e.g. `model`, `epochs`).
pub fn read_metadata(path: &Path) -> Result<HashMap<String, String>, CheckpointError> {
    let shown = path.display().to_string();
    let data = std::fs::read(path).map_err(|e| CheckpointError::Io(shown.clone(), e))?;
    let (_, meta) = SafeTensors::read_metadata(&data).map_err(|e| {
        CheckpointError::Format(shown, std::format!("not a safetensors file ({e})"))
    })?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// Writes the network's weights (and `metadata`) to `path`, through a
/// temporary file renamed into place.
pub fn save(
    net: &Net,
    path: &Path,
    metadata: HashMap<String, String>,
) -> Result<(), CheckpointError> {
    let p = path.display().to_string();
    let list = tensors(net);
    let bytes: Vec<Vec<u8>> = list
        .iter()
        .map(|(_, _, is_param, off, len)| {
            let src = if *is_param { &net.params } else { &net.stats };
            le_bytes(&src[*off..*off + *len])
        })
        .collect();
    let mut views = Vec::new();
    for ((name, shape, ..), b) in list.iter().zip(&bytes) {
        let view = TensorView::new(Dtype::F32, shape.clone(), b)
            .map_err(|e| CheckpointError::Format(p.clone(), e.to_string()))?;
        views.push((name.clone(), view));
    }
    let data = safetensors::tensor::serialize(views, Some(metadata))
        .map_err(|e| CheckpointError::Format(p.clone(), e.to_string()))?;
    let tmp = path.with_extension("safetensors.tmp");
    // On disk before the rename: a crash leaves the old checkpoint or the new one.
    std::fs::File::create(&tmp)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, &data)?;
            f.sync_all()
        })
        .map_err(|e| CheckpointError::Io(tmp.display().to_string(), e))?;
    std::fs::rename(&tmp, path).map_err(|e| CheckpointError::Io(p.clone(), e))
}

/// Loads weights saved by [`save`] into `net`, which must have the same
/// layers; returns the checkpoint's metadata.
pub fn load(net: &mut Net, path: &Path) -> Result<HashMap<String, String>, CheckpointError> {
    let p = path.display().to_string();
    let data = std::fs::read(path).map_err(|e| CheckpointError::Io(p.clone(), e))?;
    let st = SafeTensors::deserialize(&data).map_err(|e| {
        CheckpointError::Format(p.clone(), std::format!("not a safetensors file ({e})"))
    })?;
    let (_, meta) = SafeTensors::read_metadata(&data)
        .map_err(|e| CheckpointError::Format(p.clone(), e.to_string()))?;
    for (name, shape, is_param, off, len) in tensors(net) {
        let t = st.tensor(&name).map_err(|_| {
            CheckpointError::Format(
                p.clone(),
                std::format!("no tensor {name}: a checkpoint of another architecture?"),
            )
        })?;
        if t.dtype() != Dtype::F32 || t.shape() != shape.as_slice() {
            return Err(CheckpointError::Format(
                p.clone(),
                std::format!(
                    "{name} is {:?} {:?}, this network wants F32 {:?}",
                    t.dtype(),
                    t.shape(),
                    shape
                ),
            ));
        }
        let dst = if is_param {
            &mut net.params
        } else {
            &mut net.stats
        };
        for (d, c) in dst[off..off + len].iter_mut().zip(t.data().chunks_exact(4)) {
            *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
    }
    Ok(meta.metadata().clone().unwrap_or_default())
}
