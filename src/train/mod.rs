//! Training on the host (`std`): f32 networks with forward and backward
//! passes, optimisers and schedules, data-parallel over the batch on all
//! cores with results that depend only on the seed and the thread count.
//!
//! ```no_run
//! use picocnn::train::{zoo, Trainer, TrainConfig};
//! let (train, test) = picocnn::data::load_mnist("data/mnist")?;
//! let mut net = zoo::lenet5(train.shape(), 10, 1).unwrap();
//! let report = Trainer::new(TrainConfig::default()).fit(&mut net, &train, &test, &mut |e| println!("{e:?}"));
//! # Ok::<(), picocnn::data::DataError>(())
//! ```

pub mod checkpoint;
mod graph;
mod kernels;
mod layers;
mod net;
mod optim;
mod trainer;
pub mod zoo;

pub use graph::{Graph, Layer, Node};
pub use net::{Net, Trainable};
pub use optim::{clip_by_norm, learning_rate, OptimState, Optimizer, Schedule};
pub use trainer::{
    accuracy, gradient, softmax_cross_entropy, softmax_cross_entropy_soft, EpochReport,
    TrainConfig, Trainer,
};
