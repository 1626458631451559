//! Unit tests of the quantization arithmetic.

use super::*;

#[test]
fn high_mul_from_halves_is_the_wide_one() {
    let wide = |x: i32, m: i32| ((x as i64 * m as i64 + (1 << 30)) >> 31) as i32;
    let edges = [
        i32::MIN,
        i32::MIN + 1,
        -65_536,
        -65_535,
        -32_768,
        -1,
        0,
        1,
        32_767,
        65_535,
        65_536,
        i32::MAX,
    ];
    for &x in &edges {
        for &m in &edges {
            assert_eq!(
                crate::arch::portable::rounding_high_mul_16(x, m),
                wide(x, m),
                "{x} {m}"
            );
        }
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..1_000_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let (x, m) = (state as i32, (state >> 32) as i32);
        let x = x >> (state >> 59);
        assert_eq!(
            crate::arch::portable::rounding_high_mul_16(x, m),
            wide(x, m),
            "{x} {m}"
        );
    }
}

#[test]
fn nonneg_multiplier_is_tflites() {
    let edges = [
        i32::MIN,
        i32::MIN + 1,
        -(1 << 30),
        -65_537,
        -1,
        0,
        1,
        65_535,
        1 << 30,
        i32::MAX - 1,
        i32::MAX,
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as i32
    };
    for shift in -31..=30 {
        for &m in edges.iter().filter(|&&m| m >= 0) {
            for &x in &edges {
                assert_eq!(
                    multiply_by_nonneg_multiplier(x, m, shift),
                    multiply_by_quantized_multiplier(x, m, shift),
                    "x {x} m {m} shift {shift}"
                );
            }
        }
        for _ in 0..20_000 {
            let (x, m) = (next(), next() & i32::MAX);
            // Accumulators near zero, where the rounding cases lie.
            let small = x >> (next() & 31);
            for x in [x, small] {
                assert_eq!(
                    multiply_by_nonneg_multiplier(x, m, shift),
                    multiply_by_quantized_multiplier(x, m, shift),
                    "x {x} m {m} shift {shift}"
                );
            }
        }
    }
}

// The tests below pin what mutation testing (cargo-mutants) found the
// other tests let through.
#[test]
fn quantize_and_dequantize_follow_the_affine_map() {
    let q = QParams::new(0.5, -3).unwrap();
    assert_eq!(q.quantize(0.0), -3);
    assert_eq!(q.quantize(2.0), 1);
    assert_eq!(q.quantize(-2.0), -7);
    assert_eq!(q.quantize(0.75), -1); // 1.5 rounds away from zero
    assert_eq!(q.quantize(1000.0), 127);
    assert_eq!(q.quantize(-1000.0), -128);
    assert_eq!(q.dequantize(-3), 0.0);
    assert_eq!(q.dequantize(1), 2.0);
    assert_eq!(q.dequantize(-7), -2.0);
    assert_eq!(q.dequantize(127), 65.0);
    assert_eq!(q.dequantize(-128), -62.5);
    for v in i8::MIN..=i8::MAX {
        assert_eq!(q.quantize(q.dequantize(v)), v);
    }
}

#[test]
fn requant_shifts_the_kernels_take() {
    let r = |shift| Requant {
        multiplier: 1 << 30,
        shift,
    };
    assert!(r(-31).is_valid() && r(30).is_valid() && r(0).is_valid());
    assert!(!r(-32).is_valid() && !r(31).is_valid());
    assert!(Requant::ONE.is_valid());
}

#[test]
fn pow2_saturates_outside_the_normal_range() {
    for k in [-1024, -1100, -5000, i32::MIN] {
        assert_eq!(pow2(k), 0.0, "{k}");
    }
    for k in [1025, 2000, i32::MAX] {
        assert_eq!(pow2(k), f64::INFINITY, "{k}");
    }
}

#[test]
fn quantize_multiplier_negative_and_smallest() {
    // Rounds down to -2^31: halved, shift incremented.
    assert_eq!(
        quantize_multiplier(-(1.0 - 1e-12)).unwrap(),
        Requant {
            multiplier: -(1 << 30),
            shift: 1
        }
    );
    // 2^-32 is the smallest with a shift the kernels take.
    assert_eq!(
        quantize_multiplier(libm::exp2(-32.0)).unwrap(),
        Requant {
            multiplier: 1 << 30,
            shift: -31
        }
    );
    assert_eq!(
        quantize_multiplier(libm::exp2(-33.0)).unwrap(),
        Requant {
            multiplier: 0,
            shift: 0
        }
    );
    // 2^29 is the largest that needs no saturation; 2^30 is saturated.
    assert_eq!(
        quantize_multiplier(libm::exp2(29.0)).unwrap(),
        Requant {
            multiplier: 1 << 30,
            shift: 30
        }
    );
    assert_eq!(
        quantize_multiplier(libm::exp2(30.0)).unwrap(),
        Requant {
            multiplier: i32::MAX,
            shift: 30
        }
    );
    // Saturated at both signs.
    assert_eq!(
        quantize_multiplier(-1e12).unwrap(),
        Requant {
            multiplier: i32::MIN + 1,
            shift: 30
        }
    );
    assert_eq!(
        quantize_multiplier(1e12).unwrap(),
        Requant {
            multiplier: i32::MAX,
            shift: 30
        }
    );
}

#[test]
fn pow2_is_exact() {
    for k in -1022..1024 {
        assert_eq!(pow2(k), libm::exp2(f64::from(k)), "{k}");
    }
    assert_eq!(pow2(-1023), 0.0);
    assert_eq!(pow2(1024), f64::INFINITY);
}

#[test]
fn rounding_is_half_away_from_zero_everywhere() {
    let cases: [(f32, i32); 16] = [
        (0.5, 1),
        (-0.5, -1),
        (1.5, 2),
        (2.5, 3),
        (-2.5, -3),
        (0.499_999_97, 0),
        (-0.499_999_97, 0),
        (8_388_607.5, 8_388_608),
        (8_388_609.0, 8_388_609),
        (-8_388_609.0, -8_388_609),
        (16_777_217.0, 16_777_216), // the nearest f32 is 2^24
        (2_147_483_520.0, 2_147_483_520),
        (2_147_483_648.0, i32::MAX),
        (-2_147_483_648.0, i32::MIN),
        (3.0e9, i32::MAX),
        (f32::NAN, 0),
    ];
    for (x, want) in cases {
        assert_eq!(round_to_i32(x), want, "{x}");
    }
    assert_eq!(round_to_i32(f32::NEG_INFINITY), i32::MIN);
    for (x, want) in [
        (0.5, 1.0),
        (-0.5, -1.0),
        (0.499_999_999_999_999_94, 0.0),
        (2.5, 3.0),
        (4_503_599_627_370_495.5, 4_503_599_627_370_496.0),
        (9_007_199_254_740_993.0, 9_007_199_254_740_992.0),
        (-1e300, -1e300),
    ] {
        assert_eq!(round_f64(x), want, "{x}");
    }
    assert!(round_f64(f64::NAN).is_nan());
}

#[test]
fn frexp_matches_c() {
    assert_eq!(frexp(1.0), (0.5, 1));
    assert_eq!(frexp(0.75), (0.75, 0));
    assert_eq!(frexp(-3.0), (-0.75, 2));
    assert_eq!(frexp(f64::MIN_POSITIVE / 4.0), (0.5, -1023));
}

#[test]
fn quantize_multiplier_edges() {
    assert_eq!(
        quantize_multiplier(1.0).unwrap(),
        Requant {
            multiplier: 1 << 30,
            shift: 1
        }
    );
    // Rounds up to 2^31: halved, shift incremented.
    let r = quantize_multiplier(1.0 - 1e-12).unwrap();
    assert_eq!(
        r,
        Requant {
            multiplier: 1 << 30,
            shift: 1
        }
    );
    assert_eq!(
        quantize_multiplier(1e-12).unwrap(),
        Requant {
            multiplier: 0,
            shift: 0
        }
    );
    assert_eq!(
        quantize_multiplier(1e12).unwrap(),
        Requant {
            multiplier: i32::MAX,
            shift: 30
        }
    );
    let r = quantize_multiplier(0.1).unwrap();
    assert_eq!(
        r,
        Requant {
            multiplier: 1_717_986_918,
            shift: -3
        }
    );
}

#[test]
fn high_mul_equals_tflite_formula() {
    fn tflite(a: i32, b: i32) -> i32 {
        if a == i32::MIN && b == i32::MIN {
            return i32::MAX;
        }
        let ab = a as i64 * b as i64;
        let nudge = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
        ((ab + nudge) / (1i64 << 31)) as i32
    }
    let edges = [
        i32::MIN,
        i32::MIN + 1,
        -(1 << 30) - 1,
        -(1 << 30),
        -3,
        -2,
        -1,
        0,
        1,
        2,
        3,
        1 << 30,
        i32::MAX - 1,
        i32::MAX,
    ];
    for &a in &edges {
        for &b in &edges {
            assert_eq!(
                saturating_rounding_doubling_high_mul(a, b),
                tflite(a, b),
                "{a} {b}"
            );
        }
    }
    let mut x = 0x1234_5678_9abc_def0u64;
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let (a, b) = (x as i32, (x >> 32) as i32);
        assert_eq!(
            saturating_rounding_doubling_high_mul(a, b),
            tflite(a, b),
            "{a} {b}"
        );
        // Products landing exactly on a half.
        let a = (a >> 8) | 1;
        assert_eq!(
            saturating_rounding_doubling_high_mul(a, 1 << 30),
            tflite(a, 1 << 30)
        );
    }
}

#[test]
fn fixed_point_helpers() {
    assert_eq!(
        saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
        i32::MAX
    );
    assert_eq!(
        saturating_rounding_doubling_high_mul(1 << 30, 1 << 30),
        1 << 29
    );
    assert_eq!(rounding_divide_by_pot(5, 1), 3);
    assert_eq!(rounding_divide_by_pot(-5, 1), -3);
    assert_eq!(rounding_divide_by_pot(-4, 1), -2);
    assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
    assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
    assert_eq!(multiply_by_quantized_multiplier(100, 1 << 30, 0), 50);
    assert_eq!(Requant::ONE.apply(-77), -77);
}

#[test]
fn activation_ranges() {
    let q = QParams::new(0.05, -10).unwrap();
    assert_eq!(Activation::None.range_i8(q), Clamp::NONE);
    assert_eq!(Activation::Relu.range_i8(q), Clamp { min: -10, max: 127 });
    assert_eq!(Activation::Relu6.range_i8(q), Clamp { min: -10, max: 110 });
    let q = QParams::new(0.01, 127).unwrap();
    assert_eq!(Activation::Relu6.range_i8(q), Clamp { min: 127, max: 127 });
}

#[test]
fn check_requant_takes_zero_and_refuses_negative_multipliers() {
    assert!(check_requant("t", 2, &[0, 1 << 30], &[0, -31]).is_ok());
    assert!(check_requant("t", 1, &[0], &[30]).is_ok());
    assert!(check_requant("t", 2, &[1, -1], &[0, 0]).is_err());
    assert!(check_requant("t", 1, &[0], &[31]).is_err());
    assert!(check_requant("t", 1, &[0], &[-32]).is_err());
}

#[test]
fn rescale_checks_each_zero_point_and_knows_the_identity() {
    let r = |i: i32, o: i32| Rescale {
        input_zero_point: i,
        requant: Requant::ONE,
        output_zero_point: o,
    };
    assert!(r(-128, 127).validate().is_ok());
    assert!(r(128, 0).validate().is_err());
    assert!(r(0, -129).validate().is_err());
    assert!(r(-129, 128).validate().is_err());
    assert!(Rescale::IDENTITY.is_identity());
    assert!(r(5, 5).is_identity());
    assert!(!r(5, 6).is_identity());
    let halved = Rescale {
        requant: Requant {
            multiplier: 1 << 30,
            shift: 0,
        },
        ..r(5, 5)
    };
    assert!(!halved.is_identity());
}

#[test]
fn requant_from_scales_checks_each_scale() {
    for f in [conv_requant, dense_requant_per_tensor] {
        assert_eq!(
            f(0.5, 0.25, 0.25).unwrap(),
            Requant {
                multiplier: 1 << 30,
                shift: 0
            }
        );
        // A zero weight scale (all-zero weights) is allowed.
        assert_eq!(
            f(0.5, 0.0, 0.25).unwrap(),
            Requant {
                multiplier: 0,
                shift: 0
            }
        );
        // Each refused for its scale (a zero output scale would otherwise
        // give an infinite multiplier and a less telling error).
        for bad in [
            f(0.0, 0.25, 0.25),
            f(0.5, -0.25, 0.25),
            f(0.5, 0.25, 0.0),
            f(f32::NAN, 0.25, 0.25),
        ] {
            assert_eq!(
                bad,
                Err(crate::error::Error::InvalidParameter {
                    what: "scales must be positive"
                })
            );
        }
    }
}
