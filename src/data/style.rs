//! A fixed "writer's style" for grey images: the domain shift the
//! fine-tuning demonstration measures (a model trained on ordinary digits
//! meets one user's slanted, heavy strokes).
//!
//! The transform is deterministic, so a host and a board, or two runs, see
//! the same pixels:
//! 1. shear: row `y` takes its pixels from `x + round((h/2 - y) · shear)`,
//!    so strokes lean right (for `shear > 0`) about the centre row; pixels
//!    from outside the image are 0;
//! 2. thicken: every pixel becomes the maximum over the
//!    `(2r+1) x (2r+1)` square around it (grey dilation), clipped at the
//!    border.
//!
//! ```
//! use picocnn::data::style::{restyle, Style};
//! use picocnn::Shape;
//!
//! let shape = Shape::new(5, 5, 1);
//! let mut img = vec![0u8; 25];
//! img[12] = 255; // the centre pixel
//! let out = restyle(&img, shape, Style { shear: 0.0, thicken: 1 }).unwrap();
//! assert_eq!(out.iter().filter(|&&p| p == 255).count(), 9);
//! # Ok::<(), picocnn::Error>(())
//! ```

use crate::error::{invalid, Result};
use crate::tensor::Shape;
use std::vec::Vec;

/// The style's two parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Style {
    /// Horizontal shift per row above the centre, in pixels.
    pub shear: f32,
    /// Radius of the grey dilation; 0 keeps the strokes.
    pub thicken: usize,
}

impl Default for Style {
    /// The demonstration's style: shear 0.4, 5x5 dilation.
    fn default() -> Self {
        Style {
            shear: 0.4,
            thicken: 2,
        }
    }
}

/// `img` (one channel, `shape`) in `style`.
pub fn restyle(img: &[u8], shape: Shape, style: Style) -> Result<Vec<u8>> {
    let (h, w) = (shape.h as isize, shape.w as isize);
    if shape.c != 1 || img.len() != shape.len() {
        return Err(invalid("restyle takes one grey image of its shape"));
    }
    if !style.shear.is_finite() || style.thicken > 64 {
        return Err(invalid("shear must be finite and thicken at most 64"));
    }
    let at = |y: isize, x: isize| -> u8 {
        if (0..h).contains(&y) && (0..w).contains(&x) {
            img[(y * w + x) as usize]
        } else {
            0
        }
    };
    let sheared: Vec<u8> = (0..h * w)
        .map(|i| {
            let (y, x) = (i / w, i % w);
            let src = x + ((h / 2 - y) as f32 * style.shear).round() as isize;
            at(y, src)
        })
        .collect();
    let r = style.thicken as isize;
    Ok((0..h * w)
        .map(|i| {
            let (y, x) = (i / w, i % w);
            let mut m = 0;
            for yy in (y - r).max(0)..(y + r + 1).min(h) {
                for xx in (x - r).max(0)..(x + r + 1).min(w) {
                    m = m.max(sheared[(yy * w + xx) as usize]);
                }
            }
            m
        })
        .collect())
}
