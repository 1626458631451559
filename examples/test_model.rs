//! Writes one of the test networks (random weights, the shapes of
//! `tests/models`) in any precision, for benchmarks such as
//! `tools/compare_litert.sh --network resnet8 --precision f32`:
//!
//! ```text
//! cargo run --release --features std --example test_model -- resnet8 f32 target/resnet8_f32.pcnn
//! ```

#[path = "../tests/models/mod.rs"]
mod models;

use models::Precision;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [net, precision, out] = &args[..] else {
        return Err("usage: test_model lenet5|resnet8|ds_cnn|branchy i8|f32|f16 OUT.pcnn".into());
    };
    let p = match precision.as_str() {
        "i8" => Precision::I8,
        "f32" => Precision::F32,
        "f16" => Precision::F16,
        other => return Err(format!("precision {other:?}: i8, f32 or f16").into()),
    };
    let blob = match net.as_str() {
        "lenet5" => models::lenet5(p),
        "resnet8" => models::resnet8(p),
        "ds_cnn" => models::ds_cnn(p),
        "branchy" => models::branchy(p),
        other => {
            return Err(format!("network {other:?}: lenet5, resnet8, ds_cnn or branchy").into())
        }
    }?;
    let tmp = format!("{out}.tmp");
    std::fs::write(&tmp, &blob)?;
    std::fs::rename(&tmp, out)?;
    println!("{out}: {} bytes", blob.len());
    Ok(())
}
