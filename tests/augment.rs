//! Augmentation: identities, ranges, determinism, bad parameters.
#![cfg(feature = "std")]

use picocnn::augment::{
    Affine, Brightness, ColorJitter, Contrast, CropResize, Elastic, Erase, FlipHorizontal,
    FlipVertical, Gamma, Noise, Op, Pipeline, Rng, Translate,
};
use picocnn::{Error, Shape};
use proptest::prelude::*;

fn digit() -> (Vec<f32>, Shape) {
    let shape = Shape::new(28, 28, 1);
    let (train, _) =
        picocnn::data::load_mnist(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist")).unwrap();
    let img = train.image(0).iter().map(|&p| p as f32 / 255.0).collect();
    (img, shape)
}

fn rgb(seed: u64) -> (Vec<f32>, Shape) {
    let shape = Shape::new(9, 11, 3);
    let mut rng = Rng::new(seed);
    ((0..shape.len()).map(|_| rng.unit()).collect(), shape)
}

fn run(p: &Pipeline, img: &[f32], shape: Shape, seed: u64) -> Vec<f32> {
    let mut out = img.to_vec();
    p.apply(&mut out, shape, seed);
    out
}

#[test]
fn identities_give_the_input_back_exactly() {
    for (img, shape) in [digit(), rgb(3)] {
        let identities = [
            Pipeline::new().brightness(1.0, 0.0).unwrap(),
            Pipeline::new().rotate(1.0, 0.0).unwrap(),
            Pipeline::new().affine(1.0, 0.0, [1.0, 1.0], 0.0).unwrap(),
            Pipeline::new().translate(1.0, 0.0).unwrap(),
            Pipeline::new().contrast(1.0, 1.0, 1.0).unwrap(),
            Pipeline::new().gamma(1.0, 1.0, 1.0).unwrap(),
            Pipeline::new().noise(1.0, 0.0).unwrap(),
            Pipeline::new().elastic(1.0, 0.0, 3.0).unwrap(),
            Pipeline::new().erase(1.0, 0.0, 0.0).unwrap(),
            Pipeline::new()
                .then(1.0, Op::FlipHorizontal(FlipHorizontal))
                .unwrap()
                .then(1.0, Op::FlipHorizontal(FlipHorizontal))
                .unwrap(),
            Pipeline::new()
                .then(1.0, Op::FlipVertical(FlipVertical))
                .unwrap()
                .then(1.0, Op::FlipVertical(FlipVertical))
                .unwrap(),
            // Probability zero: nothing happens whatever the operation.
            Pipeline::new()
                .rotate(0.0, 30.0)
                .unwrap()
                .noise(0.0, 0.5)
                .unwrap(),
            Pipeline::new(),
        ];
        for p in identities {
            for seed in 0..5 {
                assert!(run(&p, &img, shape, seed) == img, "{:?}", p.steps());
            }
        }
    }
}

#[test]
fn flips_mirror_and_ops_change_the_image() {
    let (img, shape) = rgb(5);
    let f = run(
        &Pipeline::new()
            .then(1.0, Op::FlipHorizontal(FlipHorizontal))
            .unwrap(),
        &img,
        shape,
        0,
    );
    for y in 0..shape.h {
        for x in 0..shape.w {
            for c in 0..3 {
                assert_eq!(
                    f[(y * shape.w + x) * 3 + c],
                    img[(y * shape.w + shape.w - 1 - x) * 3 + c]
                );
            }
        }
    }
    let (img, shape) = digit();
    for p in [
        Pipeline::new().rotate(1.0, 20.0).unwrap(),
        Pipeline::new().translate(1.0, 3.0).unwrap(),
        Pipeline::new().elastic(1.0, 34.0, 4.0).unwrap(),
        Pipeline::new().erase(1.0, 0.1, 0.2).unwrap(),
        Pipeline::new().noise(1.0, 0.1).unwrap(),
        Pipeline::new()
            .then(
                1.0,
                Op::CropResize(CropResize {
                    scale: [0.5, 0.8],
                    ratio: [0.75, 1.33],
                }),
            )
            .unwrap(),
    ] {
        // Some seed changes the image (a seed may draw the identity, e.g. a
        // zero translation).
        assert!(
            (0..4).any(|s| run(&p, &img, shape, s) != img),
            "{:?}",
            p.steps()
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_image() {
    let (img, shape) = digit();
    let p = Pipeline::new()
        .affine(0.8, 15.0, [0.9, 1.1], 10.0)
        .unwrap()
        .elastic(0.5, 30.0, 4.0)
        .unwrap()
        .noise(0.5, 0.05)
        .unwrap();
    let a = run(&p, &img, shape, 42);
    assert_eq!(a, run(&p, &img, shape, 42));
    assert_ne!(a, run(&p, &img, shape, 43));
    // Run from many threads at once: same results.
    let parallel: Vec<Vec<f32>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| run(&p, &img, shape, 42)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(parallel.iter().all(|v| *v == a));
}

#[test]
fn bad_parameters_are_errors() {
    let cases: Vec<(Result<Pipeline, Error>, &str)> = vec![
        (Pipeline::new().rotate(-0.1, 10.0), "probability"),
        (Pipeline::new().rotate(1.5, 10.0), "probability"),
        (Pipeline::new().rotate(f32::NAN, 10.0), "probability"),
        (Pipeline::new().contrast(0.5, 1.2, 0.8), "contrast"),
        (Pipeline::new().gamma(0.5, 0.0, 1.0), "gamma"),
        (Pipeline::new().noise(0.5, -1.0), "noise"),
        (Pipeline::new().brightness(0.5, f32::INFINITY), "brightness"),
        (Pipeline::new().affine(0.5, 10.0, [1.1, 0.9], 0.0), "affine"),
        (
            Pipeline::new().affine(0.5, 10.0, [1.0, 1.0], 95.0),
            "affine",
        ),
        (Pipeline::new().erase(0.5, 0.2, 1.5), "erase"),
        (Pipeline::new().translate(0.5, -2.0), "translate"),
        (Pipeline::new().elastic(0.5, 30.0, -1.0), "elastic"),
    ];
    for (r, what) in cases {
        let e = r.unwrap_err();
        assert!(matches!(e, Error::InvalidParameter { .. }), "{e}");
        assert!(format!("{e}").contains(what), "{e} should mention {what}");
    }
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0.0f32..0.5, any::<bool>())
            .prop_map(|(max, per_channel)| Op::Brightness(Brightness { max, per_channel })),
        (0.0f32..1.0, 1.0f32..2.0).prop_map(|(a, b)| Op::Contrast(Contrast { range: [a, b] })),
        (0.2f32..1.0, 1.0f32..3.0).prop_map(|(a, b)| Op::Gamma(Gamma { range: [a, b] })),
        (0.0f32..0.3).prop_map(|sigma| Op::Noise(Noise { sigma })),
        (0.0f32..1.0, 0.0f32..0.5).prop_map(|(s, gain)| Op::ColorJitter(ColorJitter {
            saturation: [s, s + 0.5],
            gain
        })),
        (0.0f32..5.0).prop_map(|max| Op::Translate(Translate { max })),
        (0.1f32..1.0, 0.5f32..2.0).prop_map(|(s, r)| Op::CropResize(CropResize {
            scale: [s * 0.5, s],
            ratio: [r * 0.5, r]
        })),
        (0.0f32..180.0, 0.5f32..1.5, 0.0f32..45.0).prop_map(|(d, s, sh)| Op::Affine(Affine {
            degrees: d,
            scale: [s, s + 0.2],
            shear: sh
        })),
        (0.0f32..40.0, 0.0f32..6.0)
            .prop_map(|(alpha, sigma)| Op::Elastic(Elastic { alpha, sigma })),
        Just(Op::FlipHorizontal(FlipHorizontal)),
        Just(Op::FlipVertical(FlipVertical)),
        (0.0f32..1.0, 0.0f32..1.0).prop_map(|(a, v)| Op::Erase(Erase {
            area: [a * 0.5, a],
            value: v
        })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any pipeline keeps the shape and the 0..1 range, and never panics.
    #[test]
    fn outputs_stay_valid(
        ops in proptest::collection::vec((0.0f32..=1.0, any_op()), 0..5),
        h in 1usize..12, w in 1usize..12, c in prop_oneof![Just(1usize), Just(3)],
        seed in any::<u64>(),
    ) {
        let mut p = Pipeline::new();
        for (prob, op) in ops {
            p = p.then(prob, op).unwrap();
        }
        let shape = Shape::new(h, w, c);
        let mut rng = Rng::new(seed);
        let img: Vec<f32> = (0..shape.len()).map(|_| rng.unit()).collect();
        let out = run(&p, &img, shape, seed);
        prop_assert_eq!(out.len(), img.len());
        prop_assert!(out.iter().all(|v| (0.0..=1.0).contains(v)), "{:?}", out);
    }
}

#[test]
fn mixup_and_cutmix_labels_sum_to_one_and_match_the_pixels() {
    let shape = Shape::new(8, 10, 1);
    for mix in [
        Pipeline::new().mixup(1.0, 0.4).unwrap(),
        Pipeline::new().cutmix(1.0, 1.0).unwrap(),
    ] {
        for seed in 0..20u64 {
            // Two images, all ones and all zeros, labels 0 and 1: the mean of
            // a mixed image is the weight of its own label.
            let mut images = [vec![1.0f32; shape.len()], vec![0.0; shape.len()]].concat();
            let t = mix
                .mix_batch(&mut images, shape, &[0, 1], 3, &[seed, seed + 100])
                .unwrap();
            for j in 0..2 {
                let tj = &t[j * 3..j * 3 + 3];
                assert!((tj.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{tj:?}");
                assert_eq!(tj[2], 0.0);
                let img = &images[j * shape.len()..(j + 1) * shape.len()];
                let mean = img.iter().sum::<f32>() / shape.len() as f32;
                assert!(
                    (mean - tj[0]).abs() < 1e-5,
                    "{:?}: mean {mean} vs {tj:?}",
                    mix.mix()
                );
            }
        }
    }
    // Probability zero: one-hot labels, images untouched.
    let p = Pipeline::new().mixup(0.0, 0.4).unwrap();
    let mut images: Vec<f32> = (0..3 * shape.len()).map(|i| (i % 7) as f32 / 7.0).collect();
    let before = images.clone();
    let t = p
        .mix_batch(&mut images, shape, &[2, 0, 1], 3, &[1, 2, 3])
        .unwrap();
    assert_eq!(images, before);
    assert_eq!(t, vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    assert!(Pipeline::new()
        .mix_batch(&mut images, shape, &[2, 0, 1], 3, &[1, 2, 3])
        .is_none());
    for bad in [
        Pipeline::new().mixup(0.5, 0.0),
        Pipeline::new().cutmix(1.5, 1.0),
        Pipeline::new().mixup(0.5, f32::NAN),
    ] {
        assert!(matches!(bad, Err(Error::InvalidParameter { .. })));
    }
}

#[test]
fn soft_cross_entropy_agrees_with_hard_labels() {
    use picocnn::train::{softmax_cross_entropy, softmax_cross_entropy_soft};
    let logits = [0.3f32, -1.2, 2.0, 0.1];
    let (l1, g1) = softmax_cross_entropy(&logits, 2, 0.1);
    let (l2, g2) = softmax_cross_entropy_soft(&logits, &[0.0, 0.0, 1.0, 0.0], 0.1);
    assert_eq!(l1.to_bits(), l2.to_bits());
    assert_eq!(g1, g2);
    // A half-half target: the gradient is p - t and sums to zero.
    let (_, g) = softmax_cross_entropy_soft(&logits, &[0.5, 0.0, 0.5, 0.0], 0.0);
    assert!(g.iter().sum::<f32>().abs() < 1e-6);
}

#[test]
fn pipelines_read_from_text() {
    let p: Pipeline =
        "digits; noise(p=0.3, sigma=0.05); erase(p=0.2, area=0.05:0.1); cutmix(p=0.5, alpha=1)"
            .parse()
            .unwrap();
    assert_eq!(p.steps().len(), Pipeline::digits().steps().len() + 2);
    let n = Pipeline::digits().steps().len();
    assert_eq!(p.steps()[..n], Pipeline::digits().steps()[..]);
    assert!(matches!(
        p.mix(),
        Some(picocnn::augment::Mix::Cutmix { .. })
    ));
    assert!(matches!(
        "digits".parse::<Pipeline>().unwrap().mix(),
        Some(picocnn::augment::Mix::Mixup { .. })
    ));
    // The displayed form reads back as the same pipeline.
    for p in [
        p,
        Pipeline::new(),
        Pipeline::digits(),
        "rotate(p=1, degrees=15); flip_horizontal(p=0.5); crop_resize(scale=0.6:0.9); color_jitter; gamma(range=0.7:1.4); contrast; brightness(max=0.1, per_channel=1); mixup(alpha=0.2)"
            .parse()
            .unwrap(),
    ] {
        let text = p.to_string();
        assert_eq!(text.parse::<Pipeline>().unwrap(), p, "{text}");
    }
    assert_eq!(Pipeline::new().to_string(), "none");
    for (text, needle) in [
        ("rotat(p=0.5)", "unknown augmentation `rotat`"),
        ("rotate(deg=10)", "unknown parameter `deg`"),
        ("rotate(p=2)", "probability"),
        ("noise(sigma=x)", "`x` is not a number"),
        ("affine(scale=1.2:0.8)", "affine"),
        ("noise(p=0.5", "missing `)`"),
        ("noise(sigma)", "not key=value"),
        ("mixup(alpha=0)", "alpha"),
    ] {
        let e = text.parse::<Pipeline>().unwrap_err().to_string();
        assert!(e.contains(needle), "{text}: {e}");
        assert_eq!(e.lines().count(), 1);
    }
}

/// FNV-1a over the bits of every value.
fn digest(values: &[f32]) -> u64 {
    values.iter().fold(0xcbf2_9ce4_8422_2325, |h, v| {
        v.to_bits()
            .to_le_bytes()
            .iter()
            .fold(h, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
    })
}

#[test]
fn a_fixed_pipeline_gives_pinned_pixels_on_a_digit() {
    // Digests of today's outputs: a change of any pixel, label weight, draw
    // of the generator, text form or message shows here.
    let (img, shape) = digit();
    let rgb_shape = Shape::new(shape.h, shape.w, 3);
    let rgb: Vec<f32> = img
        .iter()
        .enumerate()
        .flat_map(|(i, &v)| [v, 1.0 - v, (v + (i % 5) as f32 / 8.0).min(1.0)])
        .collect();
    let ops = [
        Op::Brightness(Brightness {
            max: 0.2,
            per_channel: true,
        }),
        Op::Contrast(Contrast { range: [0.7, 1.3] }),
        Op::Gamma(Gamma { range: [0.8, 1.25] }),
        Op::Noise(Noise { sigma: 0.05 }),
        Op::ColorJitter(ColorJitter {
            saturation: [0.7, 1.3],
            gain: 0.1,
        }),
        Op::Translate(Translate { max: 3.0 }),
        Op::CropResize(CropResize {
            scale: [0.6, 0.9],
            ratio: [0.75, 1.333],
        }),
        Op::Affine(Affine {
            degrees: 15.0,
            scale: [0.9, 1.1],
            shear: 10.0,
        }),
        Op::Elastic(Elastic {
            alpha: 34.0,
            sigma: 4.0,
        }),
        Op::FlipHorizontal(FlipHorizontal),
        Op::FlipVertical(FlipVertical),
        Op::Erase(Erase {
            area: [0.05, 0.2],
            value: 0.5,
        }),
    ];
    let mut all = Pipeline::new();
    let mut got = Vec::new();
    for op in ops {
        all = all.then(0.5, op).unwrap();
        let one = Pipeline::new().then(1.0, op).unwrap();
        let mut h = 0u64;
        for seed in 0..3 {
            h ^= digest(&run(&one, &img, shape, seed)).rotate_left(seed as u32);
            h ^= digest(&run(&one, &rgb, rgb_shape, seed)).rotate_left(seed as u32 + 7);
        }
        got.push((op.name(), h));
    }
    let mut h = 0u64;
    for seed in 0..16 {
        h ^= digest(&run(&all, &img, shape, seed)).rotate_left(seed as u32);
        h ^= digest(&run(&all, &rgb, rgb_shape, seed)).rotate_left(seed as u32 + 20);
    }
    got.push(("all", h));
    for (name, mix) in [
        ("mixup", Pipeline::new().mixup(0.8, 0.4).unwrap()),
        ("cutmix", Pipeline::new().cutmix(0.8, 1.0).unwrap()),
    ] {
        let mut images = [img.clone(), run(&all, &img, shape, 1), img.clone()].concat();
        let t = mix
            .mix_batch(&mut images, shape, &[3, 7, 3], 10, &[11, 12, 13])
            .unwrap();
        got.push((name, digest(&[images, t].concat())));
    }
    let mut rng = Rng::new(99);
    let draws: Vec<f32> = (0..64)
        .map(|i| match i % 4 {
            0 => rng.normal(),
            1 => rng.beta(0.4),
            2 => rng.gamma(2.5),
            _ => rng.uniform(-1.0, 3.0),
        })
        .collect();
    got.push(("rng", digest(&draws) ^ rng.next_u64()));
    let order: Vec<f32> = picocnn::data::shuffled(100, 5)
        .iter()
        .map(|&i| i as f32)
        .collect();
    got.push(("shuffled", digest(&order)));
    let expected: [(&str, u64); 17] = [
        ("brightness", 0x2a3f065b3483e2f0),
        ("contrast", 0x64f810277084ee2d),
        ("gamma", 0xe9f921a132b8b30f),
        ("noise", 0xbb0526bba7de5c19),
        ("color_jitter", 0xe390d122b4e18cb5),
        ("translate", 0xab7c5374363ae2d0),
        ("crop_resize", 0xe443870c96c23b22),
        ("affine", 0x25087f97afad886e),
        ("elastic", 0xe038c99e694edd9f),
        ("flip_horizontal", 0x3e38813e26ef6b9a),
        ("flip_vertical", 0x9567c6b7360a55bc),
        ("erase", 0x20de1d59dbf32ed1),
        ("all", 0xa8d1e42d82074ed6),
        ("mixup", 0xbcabf8506bb38e5b),
        ("cutmix", 0xeec1e22265bf3831),
        ("rng", 0x318632807e8368af),
        ("shuffled", 0xd3073c8bfd883224),
    ];
    assert_eq!(got, expected, "{got:#x?}");
    assert_eq!(all.cutmix(0.8, 1.0).unwrap().to_string(),
        "brightness(p=0.5, max=0.2, per_channel=1); contrast(p=0.5, range=0.7:1.3); gamma(p=0.5, range=0.8:1.25); noise(p=0.5, sigma=0.05); color_jitter(p=0.5, saturation=0.7:1.3, gain=0.1); translate(p=0.5, max=3); crop_resize(p=0.5, scale=0.6:0.9, ratio=0.75:1.333); affine(p=0.5, degrees=15, scale=0.9:1.1, shear=10); elastic(p=0.5, alpha=34, sigma=4); flip_horizontal(p=0.5); flip_vertical(p=0.5); erase(p=0.5, area=0.05:0.2, value=0.5); cutmix(p=0.8, alpha=1)"
    );
    // Every default of the text form, and its messages, word for word.
    let defaults: Pipeline = "brightness; contrast; gamma; noise; color_jitter; translate; crop_resize; affine; rotate; elastic; flip_horizontal; flip_vertical; erase; mixup"
        .parse()
        .unwrap();
    assert_eq!(defaults.to_string(),
        "brightness(p=0.5, max=0.2, per_channel=0); contrast(p=0.5, range=0.8:1.2); gamma(p=0.5, range=0.8:1.25); noise(p=0.5, sigma=0.05); color_jitter(p=0.5, saturation=0.7:1.3, gain=0.1); translate(p=0.5, max=2); crop_resize(p=0.5, scale=0.8:1, ratio=0.75:1.333); affine(p=0.5, degrees=10, scale=1:1, shear=0); affine(p=0.5, degrees=10, scale=1:1, shear=0); elastic(p=0.5, alpha=34, sigma=4); flip_horizontal(p=0.5); flip_vertical(p=0.5); erase(p=0.5, area=0.02:0.2, value=0); mixup(p=0.5, alpha=0.4)"
    );
    let messages: Vec<String> = [
        "rotat(p=0.5)",
        "rotate(deg=10)",
        "rotate(p=2)",
        "noise(sigma=x)",
        "crop_resize(scale=0.5:x)",
        "affine(scale=1.2:0.8)",
        "gamma(range=0:1)",
        "crop_resize(scale=0.5:1.5)",
        "erase(value=inf)",
        "noise(p=0.5",
        "noise(sigma)",
        "mixup(alpha=0)",
        "cutmix(p=-1)",
        "flip_vertical(x=1)",
        "mixup(alpha=0, foo=1)",
        "noise(sigma=-1, foo=1)",
        "digits(x=1)",
        "rotate(p=x)",
        "noise(sigma=1, sigma=2)",
        "affine(shear=x, degrees=y)",
        "brightness(p=0.1,max=-1,per_channel=1)",
    ]
    .iter()
    .map(|t| t.parse::<Pipeline>().unwrap_err().to_string())
    .collect();
    assert_eq!(
        messages,
        [
    "unknown augmentation `rotat` (known: digits, none, brightness, contrast, gamma, noise, color_jitter, translate, crop_resize, affine, rotate, elastic, flip_horizontal, flip_vertical, erase, mixup, cutmix)",
    "`rotate`: unknown parameter `deg`",
    "`rotate`: invalid parameter: probability must be in [0, 1]",
    "`noise`: sigma `x` is not a number",
    "`crop_resize`: scale `x` is not a number",
    "`affine`: invalid parameter: affine: need 0 < scale lo <= hi",
    "`gamma`: invalid parameter: gamma: need 0 < lo <= hi",
    "`crop_resize`: invalid parameter: crop_resize: need 0 < scale lo <= hi <= 1 and ratio lo > 0",
    "`erase`: invalid parameter: erase: need 0 <= area lo <= hi <= 1 and a finite value",
    "`noise(p=0.5`: missing `)`",
    "`noise`: `sigma` is not key=value",
    "`mixup`: invalid parameter: mixup/cutmix: alpha must be > 0",
    "`cutmix`: invalid parameter: probability must be in [0, 1]",
    "`flip_vertical`: unknown parameter `x`",
    "`mixup`: invalid parameter: mixup/cutmix: alpha must be > 0",
    "`noise`: unknown parameter `foo`",
    "`digits`: unknown parameter `x`",
    "`rotate`: p `x` is not a number",
    "`noise`: unknown parameter `sigma`",
    "`affine`: degrees `y` is not a number",
    "`brightness`: invalid parameter: brightness: max must be >= 0",
        ],
        "{messages:#?}"
    );
}
