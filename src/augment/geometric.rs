//! Operations on positions: pixels move, or a region of the image is
//! chosen. Erasing is here because what it draws is a region (area and
//! aspect ratio, as a crop), not a change of values.

use super::text::Param;
use super::{non_negative, ordered, Augmentation};
use crate::rng::Rng;
use crate::tensor::Shape;
use crate::{Error, Result};
use std::vec;
use std::vec::Vec;

/// Shifts by a whole number of pixels up to `max` each way, filling with
/// zeros.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Translate {
    /// Largest shift in pixels.
    pub max: f32,
}

impl Augmentation for Translate {
    const NAMES: &'static [&'static str] = &["translate"];

    fn params(&mut self) -> Vec<Param<'_>> {
        vec![Param::num("max", "2", &mut self.max)]
    }

    fn check(&self) -> Result<()> {
        non_negative(self.max, "translate: max must be >= 0")
    }

    fn apply(&self, image: &mut [f32], shape: Shape, rng: &mut Rng, scratch: &mut Vec<f32>) {
        let c = shape.c;
        let m = self.max.floor() as i64;
        let dy = rng.below(2 * m as u64 + 1) as i64 - m;
        let dx = rng.below(2 * m as u64 + 1) as i64 - m;
        scratch.clear();
        scratch.extend_from_slice(image);
        for y in 0..shape.h as i64 {
            for x in 0..shape.w as i64 {
                let (sy, sx) = (y - dy, x - dx);
                let inside = sy >= 0 && sx >= 0 && sy < shape.h as i64 && sx < shape.w as i64;
                let d = (y as usize * shape.w + x as usize) * c;
                if inside {
                    let s = (sy as usize * shape.w + sx as usize) * c;
                    image[d..d + c].copy_from_slice(&scratch[s..s + c]);
                } else {
                    image[d..d + c].fill(0.0);
                }
            }
        }
    }
}

/// Crops a region of `scale` times the area (aspect ratio in `ratio`) and
/// resizes it back (bilinear).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CropResize {
    /// Area fraction range.
    pub scale: [f32; 2],
    /// Width / height range.
    pub ratio: [f32; 2],
}

impl Augmentation for CropResize {
    const NAMES: &'static [&'static str] = &["crop_resize"];

    fn params(&mut self) -> Vec<Param<'_>> {
        vec![
            Param::range("scale", "0.8:1", &mut self.scale),
            Param::range("ratio", "0.75:1.333", &mut self.ratio),
        ]
    }

    fn check(&self) -> Result<()> {
        let (scale, ratio) = (self.scale, self.ratio);
        ordered(scale, "crop_resize: need 0 < scale lo <= hi <= 1")?;
        ordered(ratio, "crop_resize: need 0 < ratio lo <= hi")?;
        if scale[0] > 0.0 && scale[1] <= 1.0 && ratio[0] > 0.0 {
            Ok(())
        } else {
            Err(Error::InvalidParameter {
                what: "crop_resize: need 0 < scale lo <= hi <= 1 and ratio lo > 0",
            })
        }
    }

    fn apply(&self, image: &mut [f32], shape: Shape, rng: &mut Rng, scratch: &mut Vec<f32>) {
        let (scale, ratio) = (self.scale, self.ratio);
        let area = rng.uniform(scale[0], scale[1]) * (shape.h * shape.w) as f32;
        let (lr0, lr1) = (ratio[0].ln(), ratio[1].ln());
        let r = rng.uniform(lr0, lr1).exp();
        let cw = (area * r).sqrt().clamp(1.0, shape.w as f32);
        let ch = (area / r).sqrt().clamp(1.0, shape.h as f32);
        let y0 = rng.uniform(0.0, shape.h as f32 - ch);
        let x0 = rng.uniform(0.0, shape.w as f32 - cw);
        let (sy, sx) = (ch / shape.h as f32, cw / shape.w as f32);
        remap(image, shape, scratch, |y, x| {
            (
                y0 + (y as f32 + 0.5) * sy - 0.5,
                x0 + (x as f32 + 0.5) * sx - 0.5,
            )
        });
    }
}

/// Rotation by up to `degrees` each way, scaling in `scale`, shear up to
/// `shear` degrees, about the centre, bilinear, zeros outside. `rotate` in
/// the text form is another name for it (its defaults rotate only).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Affine {
    /// Largest rotation in degrees.
    pub degrees: f32,
    /// Scale range.
    pub scale: [f32; 2],
    /// Largest shear in degrees.
    pub shear: f32,
}

impl Augmentation for Affine {
    const NAMES: &'static [&'static str] = &["affine", "rotate"];

    fn params(&mut self) -> Vec<Param<'_>> {
        vec![
            Param::num("degrees", "10", &mut self.degrees),
            Param::range("scale", "1:1", &mut self.scale),
            Param::num("shear", "0", &mut self.shear),
        ]
    }

    fn check(&self) -> Result<()> {
        non_negative(self.degrees, "affine: degrees must be >= 0")?;
        ordered(self.scale, "affine: need 0 < scale lo <= hi")?;
        non_negative(self.shear, "affine: shear must be >= 0")?;
        if self.scale[0] > 0.0 && self.shear < 90.0 {
            Ok(())
        } else {
            Err(Error::InvalidParameter {
                what: "affine: need scale lo > 0 and shear < 90 degrees",
            })
        }
    }

    fn apply(&self, image: &mut [f32], shape: Shape, rng: &mut Rng, scratch: &mut Vec<f32>) {
        let a = rng.uniform(-self.degrees, self.degrees).to_radians();
        let s = rng.uniform(self.scale[0], self.scale[1]);
        let sh = rng.uniform(-self.shear, self.shear).to_radians().tan();
        // Forward map: rotate(a) * shear(sh) * scale(s); sample with its inverse.
        let (cos, sin) = (a.cos(), a.sin());
        let m = [
            [cos * s, (cos * sh - sin) * s],
            [sin * s, (sin * sh + cos) * s],
        ];
        let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
        let inv = [
            [m[1][1] / det, -m[0][1] / det],
            [-m[1][0] / det, m[0][0] / det],
        ];
        let (cy, cx) = ((shape.h as f32 - 1.0) / 2.0, (shape.w as f32 - 1.0) / 2.0);
        remap(image, shape, scratch, |y, x| {
            let (u, v) = (x as f32 - cx, y as f32 - cy);
            let sx = inv[0][0] * u + inv[0][1] * v + cx;
            let sy = inv[1][0] * u + inv[1][1] * v + cy;
            (sy, sx)
        });
    }
}

/// Elastic distortion (Simard et al., 2003): a random displacement field
/// smoothed by a Gaussian of `sigma` pixels, scaled by `alpha`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Elastic {
    /// Displacement scale in pixels.
    pub alpha: f32,
    /// Smoothing in pixels.
    pub sigma: f32,
}

impl Augmentation for Elastic {
    const NAMES: &'static [&'static str] = &["elastic"];

    fn params(&mut self) -> Vec<Param<'_>> {
        vec![
            Param::num("alpha", "34", &mut self.alpha),
            Param::num("sigma", "4", &mut self.sigma),
        ]
    }

    fn check(&self) -> Result<()> {
        non_negative(self.alpha, "elastic: alpha must be >= 0")?;
        non_negative(self.sigma, "elastic: sigma must be >= 0")
    }

    fn apply(&self, image: &mut [f32], shape: Shape, rng: &mut Rng, scratch: &mut Vec<f32>) {
        let n = shape.h * shape.w;
        let mut field = vec![0.0f32; 2 * n];
        for pair in field.chunks_mut(2) {
            let (a, b) = rng.unit_pair();
            pair[0] = 2.0 * a - 1.0;
            if let Some(v) = pair.get_mut(1) {
                *v = 2.0 * b - 1.0;
            }
        }
        blur(&mut field[..n], shape.h, shape.w, self.sigma);
        blur(&mut field[n..], shape.h, shape.w, self.sigma);
        let alpha = self.alpha;
        remap(image, shape, scratch, |y, x| {
            let k = y * shape.w + x;
            (y as f32 + alpha * field[k], x as f32 + alpha * field[n + k])
        });
    }
}

/// Mirrors left to right.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FlipHorizontal;

impl Augmentation for FlipHorizontal {
    const NAMES: &'static [&'static str] = &["flip_horizontal"];

    fn apply(&self, image: &mut [f32], shape: Shape, _: &mut Rng, _: &mut Vec<f32>) {
        let c = shape.c;
        for row in image.chunks_exact_mut(shape.w * c) {
            for x in 0..shape.w / 2 {
                for ch in 0..c {
                    row.swap(x * c + ch, (shape.w - 1 - x) * c + ch);
                }
            }
        }
    }
}

/// Mirrors top to bottom.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FlipVertical;

impl Augmentation for FlipVertical {
    const NAMES: &'static [&'static str] = &["flip_vertical"];

    fn apply(&self, image: &mut [f32], shape: Shape, _: &mut Rng, _: &mut Vec<f32>) {
        let row = shape.w * shape.c;
        for y in 0..shape.h / 2 {
            let (top, bottom) = image.split_at_mut((shape.h - 1 - y) * row);
            top[y * row..(y + 1) * row].swap_with_slice(&mut bottom[..row]);
        }
    }
}

/// Random erasing (cutout): a rectangle of `area` times the image (aspect
/// ratio in `0.3..3.3`) set to `value`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Erase {
    /// Area fraction range.
    pub area: [f32; 2],
    /// Fill value.
    pub value: f32,
}

impl Augmentation for Erase {
    const NAMES: &'static [&'static str] = &["erase"];

    fn params(&mut self) -> Vec<Param<'_>> {
        vec![
            Param::range("area", "0.02:0.2", &mut self.area),
            Param::num("value", "0", &mut self.value),
        ]
    }

    fn check(&self) -> Result<()> {
        ordered(self.area, "erase: need 0 <= area lo <= hi <= 1")?;
        if self.area[1] <= 1.0 && self.value.is_finite() {
            Ok(())
        } else {
            Err(Error::InvalidParameter {
                what: "erase: need 0 <= area lo <= hi <= 1 and a finite value",
            })
        }
    }

    fn apply(&self, image: &mut [f32], shape: Shape, rng: &mut Rng, _: &mut Vec<f32>) {
        let c = shape.c;
        let a = rng.uniform(self.area[0], self.area[1]) * (shape.h * shape.w) as f32;
        let r = rng.uniform(0.3f32.ln(), 3.3f32.ln()).exp();
        let eh = ((a / r).sqrt().round() as usize).min(shape.h);
        let ew = ((a * r).sqrt().round() as usize).min(shape.w);
        let y0 = rng.below((shape.h - eh + 1) as u64) as usize;
        let x0 = rng.below((shape.w - ew + 1) as u64) as usize;
        for y in y0..y0 + eh {
            image[(y * shape.w + x0) * c..(y * shape.w + x0 + ew) * c].fill(self.value);
        }
    }
}

/// Resamples `image` in place: output pixel `(y, x)` takes the input at
/// `map(y, x)`, bilinear, zero outside. At whole-pixel positions the result
/// is the input value exactly (weights one and zero).
fn remap(
    image: &mut [f32],
    shape: Shape,
    scratch: &mut Vec<f32>,
    mut map: impl FnMut(usize, usize) -> (f32, f32),
) {
    scratch.clear();
    scratch.extend_from_slice(image);
    let (h, w, c) = (shape.h as isize, shape.w as isize, shape.c);
    let src = &scratch[..];
    // Pixel `(y, x)`'s channels, or None outside.
    let at = |y: isize, x: isize| -> Option<usize> {
        (y >= 0 && x >= 0 && y < h && x < w).then(|| (y * w + x) as usize * c)
    };
    for y in 0..shape.h {
        for x in 0..shape.w {
            let (sy, sx) = map(y, x);
            let out = &mut image[(y * shape.w + x) * c..(y * shape.w + x + 1) * c];
            if !(sy > -1.0 && sx > -1.0 && sy < h as f32 && sx < w as f32) {
                out.fill(0.0);
                continue;
            }
            // Floor of a value above -1 (truncation is floor for >= 0).
            let floor = |v: f32| if v < 0.0 { -1 } else { v as isize };
            let (y0, x0) = (floor(sy), floor(sx));
            let (fy, fx) = (sy - y0 as f32, sx - x0 as f32);
            // Outside taps read pixel 0 with weight zero.
            let tap = |y: isize, x: isize, wt: f32| at(y, x).map_or((0, 0.0), |i| (i, wt));
            let taps = [
                tap(y0, x0, (1.0 - fy) * (1.0 - fx)),
                tap(y0, x0 + 1, (1.0 - fy) * fx),
                tap(y0 + 1, x0, fy * (1.0 - fx)),
                tap(y0 + 1, x0 + 1, fy * fx),
            ];
            for (ch, o) in out.iter_mut().enumerate() {
                *o = src[taps[0].0 + ch] * taps[0].1
                    + src[taps[1].0 + ch] * taps[1].1
                    + src[taps[2].0 + ch] * taps[2].1
                    + src[taps[3].0 + ch] * taps[3].1;
            }
        }
    }
}

/// Gaussian blur of one plane, separable, zero outside; each pass adds a
/// shifted, weighted copy of the rows per tap (loops the compiler
/// vectorises).
fn blur(plane: &mut [f32], h: usize, w: usize, sigma: f32) {
    if sigma <= 0.0 {
        return;
    }
    let r = (3.0 * sigma).ceil() as isize;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let norm: f32 = k.iter().sum();
    let k: Vec<f32> = k.iter().map(|v| v / norm).collect();
    let mut tmp = vec![0.0f32; h * w];
    // Horizontal: tmp[y][x] += k[j] * plane[y][x + j - r].
    for y in 0..h {
        let (src, dst) = (&plane[y * w..(y + 1) * w], &mut tmp[y * w..(y + 1) * w]);
        for (j, &kv) in k.iter().enumerate() {
            let d = j as isize - r;
            let (lo, hi) = (
                (-d).max(0) as usize,
                (w as isize - d).clamp(0, w as isize) as usize,
            );
            if lo >= hi {
                continue;
            }
            let s = &src[(lo as isize + d) as usize..(hi as isize + d) as usize];
            for (o, &v) in dst[lo..hi].iter_mut().zip(s) {
                *o += kv * v;
            }
        }
    }
    // Vertical: plane[y] = sum over taps of k[j] * tmp[y + j - r].
    plane.fill(0.0);
    for y in 0..h {
        for (j, &kv) in k.iter().enumerate() {
            let yy = y as isize + j as isize - r;
            if yy < 0 || yy >= h as isize {
                continue;
            }
            let yy = yy as usize;
            let (src, dst) = (&tmp[yy * w..(yy + 1) * w], &mut plane[y * w..(y + 1) * w]);
            for (o, &v) in dst.iter_mut().zip(src) {
                *o += kv * v;
            }
        }
    }
}
