//! The host side of the serial jobs (`serial`, `teach`): the model the
//! `serve` firmware embeds, the `picocnn` command and the digits as PNGs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The model the `serve` firmware embeds.
pub const MODEL: &str = "tests/models/lenet5_mnist_i8_fused.pcnn";

/// Writes a 28x28 grey image as a PNG file.
pub fn write_png(path: &Path, img: &[u8]) -> Result<(), String> {
    let f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), 28, 28);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .and_then(|mut w| w.write_image_data(img))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs `picocnn send --port pty` with `args`; its standard output.
pub fn send(picocnn: &Path, pty: &str, args: &[&std::ffi::OsStr]) -> Result<String, String> {
    let o = Command::new(picocnn)
        .args(["send", "--port", pty, "--timeout", "10"])
        .args(args)
        .output()
        .map_err(|e| format!("cannot run picocnn send: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "picocnn send: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Builds the `picocnn` command (release); returns its path.
pub fn build_cli() -> Option<PathBuf> {
    let status = Command::new(crate::host_cargo())
        .args([
            "build",
            "--quiet",
            "--release",
            "--features",
            "cli",
            "--bin",
            "picocnn",
        ])
        .current_dir(crate::root())
        .status();
    matches!(status, Ok(s) if s.success()).then(|| crate::host_target_dir().join("release/picocnn"))
}
