//! The data loaders: the shipped MNIST subset, raw and gzip IDX files, PNG
//! folders, seeded batches, and a clear error for each kind of bad file.
#![cfg(feature = "std")]

use picocnn::data::{load_image_folder, load_mnist, read_idx, shuffled, DataError};
use picocnn::Shape;
use std::io::Write;
use std::path::PathBuf;

mod common;
use common::temp_dir;

fn idx_images(n: u32, h: u32, w: u32, data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 3];
    for d in [n, h, w] {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 1];
    v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    v.extend_from_slice(labels);
    v
}

fn mnist_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist")
}

#[test]
fn shipped_mnist_subset() {
    let (train, test) = load_mnist(mnist_dir()).unwrap();
    assert_eq!((train.len(), test.len()), (8000, 2000));
    assert_eq!(train.shape(), Shape::new(28, 28, 1));
    assert_eq!(train.classes(), 10);
    let mut counts = [0usize; 10];
    for &l in test.labels() {
        counts[l as usize] += 1;
    }
    assert_eq!(counts, [202, 214, 190, 219, 199, 174, 205, 205, 197, 195]);
    // Real digits: mostly background, some ink, every image different.
    let ink: usize = train.image(0).iter().filter(|&&p| p > 128).count();
    assert!((30..400).contains(&ink), "{ink}");
    assert_ne!(train.image(0), train.image(1));
}

#[test]
fn raw_and_gzip_idx_read_the_same() {
    let d = temp_dir("idx");
    let data: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8).collect();
    let raw = idx_images(2, 3, 4, &data);
    std::fs::write(d.join("raw"), &raw).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    std::fs::write(d.join("raw.gz"), gz.finish().unwrap()).unwrap();
    let a = read_idx(d.join("raw")).unwrap();
    let b = read_idx(d.join("raw.gz")).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.dims, vec![2, 3, 4]);
    assert_eq!(a.data, data);
}

#[test]
fn bad_idx_files_give_clear_errors() {
    let d = temp_dir("bad-idx");
    // Wrong magic.
    std::fs::write(d.join("png"), b"\x89PNG\r\n\x1a\n....").unwrap();
    let e = read_idx(d.join("png")).unwrap_err();
    assert!(matches!(e, DataError::WrongMagic { .. }), "{e}");
    assert!(e.to_string().contains("png"), "{e}");
    // Truncated.
    let raw = idx_images(10, 28, 28, &[0; 100]);
    std::fs::write(d.join("short"), &raw).unwrap();
    match read_idx(d.join("short")) {
        Err(DataError::Truncated { expected, got, .. }) => {
            assert_eq!((expected, got), (16 + 7840, 116))
        }
        other => panic!("{other:?}"),
    }
    // Missing file: the error names it.
    let e = read_idx(d.join("nope")).unwrap_err();
    assert!(
        matches!(e, DataError::Io { .. }) && e.to_string().contains("nope"),
        "{e}"
    );
    // A folder whose label count differs from its image count.
    let m = d.join("mnist");
    std::fs::create_dir_all(&m).unwrap();
    for split in ["train", "t10k"] {
        std::fs::write(
            m.join(format!("{split}-images-idx3-ubyte")),
            idx_images(3, 2, 2, &[1; 12]),
        )
        .unwrap();
        std::fs::write(
            m.join(format!("{split}-labels-idx1-ubyte")),
            idx_labels(&[1, 2]),
        )
        .unwrap();
    }
    let e = load_mnist(&m).unwrap_err();
    assert!(e.to_string().contains("2 labels for 3 images"), "{e}");
    // A label that is not a digit.
    std::fs::write(m.join("train-labels-idx1-ubyte"), idx_labels(&[1, 2, 12])).unwrap();
    let e = load_mnist(&m).unwrap_err();
    assert!(e.to_string().contains("label 12"), "{e}");
    // Labels where images belong.
    std::fs::write(m.join("train-images-idx3-ubyte"), idx_labels(&[1, 2, 3])).unwrap();
    assert!(matches!(load_mnist(&m), Err(DataError::WrongMagic { .. })));
}

fn write_png(path: &std::path::Path, w: u32, h: u32, color: png::ColorType, data: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(data).unwrap();
}

#[test]
fn image_folders() {
    let d = temp_dir("folder");
    for (class, value) in [("cat", 10u8), ("dog", 200)] {
        std::fs::create_dir_all(d.join(class)).unwrap();
        for i in 0..3 {
            write_png(
                &d.join(class).join(format!("{i}.png")),
                4,
                3,
                png::ColorType::Grayscale,
                &[value + i; 12],
            );
        }
    }
    std::fs::write(d.join("dog").join("notes.txt"), "ignored").unwrap();
    let ds = load_image_folder(&d).unwrap();
    assert_eq!(ds.len(), 6);
    assert_eq!(ds.shape(), Shape::new(3, 4, 1));
    assert_eq!(ds.class_names(), &["cat".to_string(), "dog".to_string()]);
    assert_eq!((ds.label(0), ds.label(5)), (0, 1));
    assert_eq!(ds.image(4), &[201; 12]);

    // RGB works too.
    let rgb = temp_dir("folder-rgb");
    std::fs::create_dir_all(rgb.join("a")).unwrap();
    write_png(
        &rgb.join("a").join("x.png"),
        2,
        2,
        png::ColorType::Rgb,
        &[7; 12],
    );
    assert_eq!(
        load_image_folder(&rgb).unwrap().shape(),
        Shape::new(2, 2, 3)
    );

    // A different size, and a file that is not a PNG.
    write_png(
        &d.join("dog").join("big.png"),
        5,
        5,
        png::ColorType::Grayscale,
        &[0; 25],
    );
    let e = load_image_folder(&d).unwrap_err();
    assert!(
        matches!(e, DataError::BadImage { .. }) && e.to_string().contains("big.png"),
        "{e}"
    );
    std::fs::remove_file(d.join("dog").join("big.png")).unwrap();
    std::fs::write(d.join("cat").join("broken.png"), b"not a png").unwrap();
    let e = load_image_folder(&d).unwrap_err();
    assert!(
        e.to_string().contains("broken.png") && e.to_string().contains("unreadable PNG"),
        "{e}"
    );
    // No class folders.
    assert!(load_image_folder(temp_dir("empty")).is_err());
}

#[test]
fn batches_are_seeded_and_cover_everything() {
    let (train, _) = load_mnist(mnist_dir()).unwrap();
    let a: Vec<Vec<usize>> = train.batches(64, 7).collect();
    let b: Vec<Vec<usize>> = train.batches(64, 7).collect();
    let c: Vec<Vec<usize>> = train.batches(64, 8).collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.len(), 125);
    let mut all: Vec<usize> = a.concat();
    all.sort();
    assert_eq!(all, (0..8000).collect::<Vec<_>>());
    let last: Vec<Vec<usize>> = train.batches(3000, 1).collect();
    assert_eq!(
        last.iter().map(|b| b.len()).collect::<Vec<_>>(),
        vec![3000, 3000, 2000]
    );
    assert_eq!(shuffled(5, 1).len(), 5);
}
