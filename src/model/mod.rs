//! Model blobs (`.pcnn`): the format, a checked zero-copy view, the arena
//! plan and the interpreter.
//!
//! A model is one byte blob that runs from flash with no copy:
//! [`Model::parse`] checks everything once, [`Interpreter`] runs it in one
//! caller-owned arena of [`Model::arena_len`] bytes. With the `std` feature,
//! [`ModelBuilder`](crate::model::writer::ModelBuilder) writes blobs (the
//! reader's exact twin) and plans the arena.

#[cfg(feature = "std")]
pub mod batch;
mod check;
mod element;
pub mod format;
mod interp;
mod layer;
mod op;
mod summary;
mod view;
#[cfg(feature = "std")]
pub mod writer;

pub use element::Element;
pub use format::{DType, OpKind, Train};
pub(crate) use interp::Tuned;
pub use interp::{Interpreter, LayerEvent};
pub use layer::Layer;
pub(crate) use op::{parts, Parts};
pub use summary::{LayerSummary, Summary};
pub(crate) use view::CRC32;
pub use view::{crc32, Model, OpInfo, TensorInfo};
