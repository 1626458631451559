//! Per-layer figures of a model: what each layer is, its output, its
//! parameters, multiply-accumulates and weight bytes, and totals.

use super::format::{DType, OpKind};
use super::op::{Record, Site};
use super::view::Model;
use crate::tensor::Shape;
use core::fmt;

/// One row of a [`Summary`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LayerSummary<'a> {
    /// Layer name.
    pub name: &'a str,
    /// Op.
    pub kind: OpKind,
    /// Element type.
    pub dtype: DType,
    /// Output shape.
    pub output: Shape,
    /// Trainable parameters (weights and biases).
    pub params: usize,
    /// Multiply-accumulates per inference.
    pub macs: usize,
    /// Bytes of weights, biases and fixed-point tables in the blob.
    pub bytes: usize,
}

/// Per-layer figures and totals of a model; printable as a table.
///
/// ```
/// # fn show(model: &picocnn::model::Model<'_>) {
/// let summary = picocnn::model::Summary::new(model);
/// println!("{summary}");
/// assert_eq!(summary.layers().count(), model.op_count());
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Summary<'m, 'a> {
    model: &'m Model<'a>,
}

impl<'m, 'a> Summary<'m, 'a> {
    /// The summary of `model`.
    pub fn new(model: &'m Model<'a>) -> Self {
        Summary { model }
    }

    /// Row of op `i`.
    pub fn layer(&self, i: usize) -> LayerSummary<'a> {
        let m = self.model;
        let op = m.op(i);
        let site = Site::new(m, &op, i);
        let record = Record::read(&op);
        let footprint = record.footprint(&site);
        LayerSummary {
            name: op.name,
            kind: op.kind,
            dtype: op.dtype,
            output: m.tensor(op.output).shape,
            params: footprint.params,
            macs: record.macs(&site),
            bytes: footprint.bytes,
        }
    }

    /// Every row, in op order.
    pub fn layers(&self) -> impl Iterator<Item = LayerSummary<'a>> + '_ {
        (0..self.model.op_count()).map(|i| self.layer(i))
    }

    /// Total parameters.
    pub fn params(&self) -> usize {
        self.layers().map(|l| l.params).sum()
    }

    /// Total multiply-accumulates per inference.
    pub fn macs(&self) -> usize {
        self.layers().map(|l| l.macs).sum()
    }

    /// Total bytes of weights and tables.
    pub fn bytes(&self) -> usize {
        self.layers().map(|l| l.bytes).sum()
    }
}

impl fmt::Display for Summary<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<3} {:<16} {:<10} {:<5} {:>12} {:>9} {:>10} {:>9}",
            "#", "layer", "op", "type", "output", "params", "MACs", "bytes"
        )?;
        for (i, l) in self.layers().enumerate() {
            let shape = l.output;
            let mut s = heapless::String::<24>::new();
            let _ = fmt::write(&mut s, format_args!("{}x{}x{}", shape.h, shape.w, shape.c));
            writeln!(
                f,
                "{:<3} {:<16} {:<10} {:<5} {:>12} {:>9} {:>10} {:>9}",
                i,
                l.name,
                l.kind.name(),
                l.dtype.name(),
                s.as_str(),
                l.params,
                l.macs,
                l.bytes
            )?;
        }
        writeln!(
            f,
            "total: {} params, {} MACs, {} bytes of weights; arena {} bytes; model {} bytes",
            self.params(),
            self.macs(),
            self.bytes(),
            self.model.arena_len(),
            self.model.bytes().len()
        )
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Summary<'_, '_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        for (i, l) in self.layers().enumerate() {
            defmt::write!(
                f,
                "{=usize} {=str} {=str} {=usize}x{=usize}x{=usize} params {=usize} macs {=usize} bytes {=usize}\n",
                i,
                l.name,
                l.kind.name(),
                l.output.h,
                l.output.w,
                l.output.c,
                l.params,
                l.macs,
                l.bytes
            );
        }
        defmt::write!(
            f,
            "total {=usize} params {=usize} macs arena {=usize}",
            self.params(),
            self.macs(),
            self.model.arena_len()
        );
    }
}
