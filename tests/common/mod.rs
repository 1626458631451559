//! Helpers shared by the integration tests that write files.

use std::path::Path;

/// A scratch folder, removed when dropped (also when the test fails).
pub struct Scratch(tempfile::TempDir);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}

/// A new scratch folder whose name starts with `picocnn-{name}-`.
pub fn temp_dir(name: &str) -> Scratch {
    let d = tempfile::Builder::new()
        .prefix(&format!("picocnn-{name}-"))
        .tempdir()
        .unwrap();
    Scratch(d)
}
