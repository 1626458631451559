//! Trains a zoo model (LeNet-5 by default) on the shipped MNIST digits with
//! Keras's usual recipe (batch 64, Adam 1e-3) and prints each epoch.
//!
//! `cargo run --release --features std --example train_lenet -- [epochs] [seed] [threads] [model]`
//! with model one of lenet5, alexnet_mini, vgg_mini, inception_mini, resnet8.

use picocnn::train::{zoo, TrainConfig, Trainer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (epochs, seed, threads) = (arg(1, 10) as usize, arg(2, 1), arg(3, 0) as usize);
    let (train, test) = picocnn::data::load_mnist("data/mnist")?;
    let mut net = zoo::lenet5(train.shape(), 10, seed)?;
    println!(
        "LeNet-5: {} parameters, {} MACs",
        net.param_count(),
        net.macs()
    );
    let config = TrainConfig {
        epochs,
        seed,
        threads,
        ..TrainConfig::default()
    };
    Trainer::new(config).fit(&mut net, &train, &test, &mut |e| {
        println!(
            "epoch {:>2}: loss {:.4}, train {:.2} %, test {:.2} %, {:.2} s",
            e.epoch,
            e.train_loss,
            100.0 * e.train_accuracy,
            100.0 * e.test_accuracy,
            e.seconds
        )
    });
    Ok(())
}
