//! A model blob as Rust source, for firmware that links its model in.

use std::format;
use std::string::String;

/// Rust source holding `blob` as a 16-byte aligned `static MODEL`, with
/// `ARENA_LEN` (`arena_len`, the blob's
/// [`Model::arena_len`](crate::model::Model::arena_len)),
/// `TRAIN_ARENA_LEN` (`train_len`, its
/// [`Model::train_len`](crate::model::Model::train_len): the fine-tuner's
/// training buffer, 0 without a trainable set) and `MODEL_LEN` as
/// constants; `name` describes the model in the file's first line.
/// `picocnn export --rust` writes this.
///
/// ```
/// use picocnn::export::rust_source;
///
/// let src = rust_source(&[1, 2, 0xab], 640, 1_167, "lenet5 (Int8)");
/// assert!(src.starts_with("//! lenet5 (Int8), written by `picocnn export`"));
/// assert!(src.contains("#[repr(C, align(16))]"));
/// assert!(src.contains("pub const ARENA_LEN: usize = 640;"));
/// assert!(src.contains("pub const TRAIN_ARENA_LEN: usize = 1167;"));
/// assert!(src.contains("pub const MODEL_LEN: usize = 3;"));
/// assert!(src.ends_with("Aligned([\n    0x01, 0x02, 0xab,\n]);\n"));
/// ```
pub fn rust_source(blob: &[u8], arena_len: usize, train_len: usize, name: &str) -> String {
    let mut s = format!(
        "//! {name}, written by `picocnn export`: regenerate rather than edit.\n\n\
         /// Bytes on a 16-byte boundary, as `Model::parse` wants them.\n\
         #[repr(C, align(16))]\n\
         pub struct Aligned<T: ?Sized>(pub T);\n\n\
         /// Arena bytes the model needs: `static mut ARENA: [u8; ARENA_LEN]`.\n\
         pub const ARENA_LEN: usize = {arena_len};\n\n\
         /// Bytes of the fine-tuner's training buffer for the trainable set\n\
         /// recorded in the blob (0: none): `FineTuner::new`'s `train`.\n\
         pub const TRAIN_ARENA_LEN: usize = {train_len};\n\n\
         /// Bytes of the model blob.\n\
         pub const MODEL_LEN: usize = {};\n\n\
         /// The model blob: `Model::parse(&MODEL.0)`.\n\
         pub static MODEL: Aligned<[u8; MODEL_LEN]> = Aligned([",
        blob.len()
    );
    for (i, b) in blob.iter().enumerate() {
        if i % 16 == 0 {
            s.push_str("\n   ");
        }
        s.push_str(&format!(" 0x{b:02x},"));
    }
    s.push_str("\n]);\n");
    s
}
