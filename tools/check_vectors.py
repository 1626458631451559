#!/usr/bin/env python3
"""Independent NumPy re-implementation of TFLite's int8 reference kernels.

Reads tests/vectors/tflite/*.json (written by gen_tflite_vectors.py) and
recomputes every output from the inputs, weights and quantization parameters
alone, using TFLite's integer arithmetic:

  * QuantizeMultiplier: frexp + round-half-away-from-zero of q * 2^31,
    q_fixed == 2^31 -> halve and ++shift, shift < -31 -> (0, 0),
    and (single-rounding builds only) shift > 30 -> (2^31 - 1, 30);
  * MultiplyByQuantizedMultiplier, either double rounding
    (SaturatingRoundingDoublingHighMul then RoundingDivideByPOT) or single
    rounding (one 64-bit rounding shift) = TFLITE_SINGLE_ROUNDING;
  * per-channel CONV_2D / DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD (left_shift
    20), AVERAGE_POOL_2D (round half away from zero division by the number of
    in-image taps), MAX_POOL_2D, CONCATENATION, RELU/RELU6 (requantizing),
    QUANTIZE (int8->int8 requantize) and SOFTMAX (gemmlowp fixed-point exp,
    reciprocal, diff_min cut-off).

Each case is checked in both rounding modes; the report says which mode(s)
reproduce the TFLite output bit-exactly. Exit status is 0 iff every case is
reproduced exactly by the double-rounding mode (what TFLite's stock build,
and hence the Python interpreter, uses).

Needs only numpy. Usage: python tools/check_vectors.py [DIR]
"""

import glob
import json
import math
import os
import sys

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DIR = os.path.join(REPO_ROOT, "tests", "vectors", "tflite")

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def f32(x):
    return np.float32(x)


def round_half_away(x):
    """std::round / TfLiteRound on a Python float."""
    return math.floor(abs(x) + 0.5) * (1 if x >= 0 else -1)


def tdiv(n, d):
    """C++ integer division (truncation toward zero), elementwise int64."""
    n = np.asarray(n, dtype=np.int64)
    q = np.abs(n) // d
    return np.where(n < 0, -q, q)


def assert_i32(x, what):
    x = np.asarray(x)
    if x.size and (x.min() < I32_MIN or x.max() > I32_MAX):
        raise OverflowError(f"{what} overflows int32")
    return x


# --------------------------------------------------------------------------
# gemmlowp / TFLite fixed-point primitives (vectorised over int64 arrays that
# hold int32 values).
# --------------------------------------------------------------------------


def srdhm(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul (int32)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    overflow = (a == I32_MIN) & (b == I32_MIN)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    res = tdiv(ab + nudge, 1 << 31)
    return np.where(overflow, I32_MAX, res)


def rdbpot(x, exponent):
    """gemmlowp RoundingDivideByPOT: round half away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def sat_shift_left(x, exponent):
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent>, exponent > 0."""
    x = np.asarray(x, dtype=np.int64)
    threshold = (1 << (31 - exponent)) - 1
    res = x << exponent
    res = np.where(x > threshold, I32_MAX, res)
    return np.where(x < -threshold, I32_MIN, res)


class Arith:
    def __init__(self, single_rounding):
        self.single = single_rounding

    def quantize_multiplier(self, d):
        d = float(d)
        if d == 0.0:
            return 0, 0
        q, shift = math.frexp(d)
        q_fixed = round_half_away(q * (1 << 31))
        assert q_fixed <= (1 << 31)
        if q_fixed == (1 << 31):
            q_fixed //= 2
            shift += 1
        if shift < -31:
            shift, q_fixed = 0, 0
        if self.single and shift > 30:
            shift, q_fixed = 30, (1 << 31) - 1
        return int(q_fixed), int(shift)

    def mbqm(self, x, mult, shift):
        """MultiplyByQuantizedMultiplier(int32 x, int32 mult, int shift)."""
        x = np.asarray(x, dtype=np.int64)
        mult = np.asarray(mult, dtype=np.int64)
        shift = np.asarray(shift, dtype=np.int64)
        assert_i32(x, "mbqm input")
        if self.single:
            total = 31 - shift
            return (x * mult + (np.int64(1) << (total - 1))) >> total
        left = np.maximum(shift, 0)
        right = np.maximum(-shift, 0)
        return rdbpot(srdhm(assert_i32(x << left, "x << left_shift"), mult), right)

    def mbqm_smaller_than_one_exp(self, x, mult, left_shift):
        if self.single:
            return self.mbqm(x, mult, left_shift)
        return rdbpot(srdhm(x, mult), -np.asarray(left_shift, dtype=np.int64))

    def mbqm_greater_than_one(self, x, mult, left_shift):
        if self.single:
            return self.mbqm(x, mult, left_shift)
        x = np.asarray(x, dtype=np.int64)
        return srdhm(assert_i32(x << left_shift, "x << left_shift"), mult)


def quantize_act(f, scale, zp):
    """CalculateActivationRangeQuantized's quantize(): float32 math."""
    return zp + int(round_half_away(float(f32(f) / f32(scale))))


def act_range(activation, scale, zp):
    if activation == "NONE":
        return -128, 127
    if activation == "RELU":
        return max(-128, quantize_act(0.0, scale, zp)), 127
    if activation == "RELU6":
        return max(-128, quantize_act(0.0, scale, zp)), min(127, quantize_act(6.0, scale, zp))
    raise ValueError(activation)


def compute_padding(in_size, filt, stride, dilation, padding):
    eff = (filt - 1) * dilation + 1
    if padding == "SAME":
        out = (in_size + stride - 1) // stride
    else:
        out = (in_size + stride - eff) // stride
    total = max((out - 1) * stride + eff - in_size, 0)
    return out, total // 2


def arr(t):
    return np.array(t["data"], dtype=np.int64).reshape(t["shape"])


# --------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------


def conv_like(v, ar, depthwise):
    p = v["params"]
    (inp,) = v["inputs"]
    out = v["output"]
    x = arr(inp) - inp["zero_point"]  # input + input_offset
    n, h, w, c = x.shape
    f = p["filter"]
    wt = np.array(f["data"], dtype=np.int64).reshape(f["shape"])
    _, kh, kw, _ = wt.shape
    sh, sw = p["stride"]
    dh, dw = p["dilation"]
    oh, pt = compute_padding(h, kh, sh, dh, p["padding"])
    ow, pl = compute_padding(w, kw, sw, dw, p["padding"])
    assert [n, oh, ow] == out["shape"][:3], (out["shape"], oh, ow)
    # Padding cells contribute nothing (TFLite skips them); pad with 0 after
    # the offset has been applied.
    big_h = max(pt + h, (oh - 1) * sh + (kh - 1) * dh + 1)
    big_w = max(pl + w, (ow - 1) * sw + (kw - 1) * dw + 1)
    xp = np.zeros((n, big_h, big_w, c), dtype=np.int64)
    xp[:, pt:pt + h, pl:pl + w, :] = x
    cout = out["shape"][3]
    acc = np.zeros((n, oh, ow, cout), dtype=np.int64)
    for fy in range(kh):
        for fx in range(kw):
            ys = fy * dh + np.arange(oh) * sh
            xs = fx * dw + np.arange(ow) * sw
            patch = xp[:, ys][:, :, xs]
            if depthwise:
                m = p["depth_multiplier"]
                assert cout == c * m
                acc += patch[..., np.repeat(np.arange(c), m)] * wt[0, fy, fx, :]
            else:
                acc += patch @ wt[:, fy, fx, :].T
    acc += np.array(p["bias"]["data"], dtype=np.int64)
    assert_i32(acc, "accumulator")
    mults, shifts = zip(*[
        ar.quantize_multiplier(float(inp["scale"]) * float(fs) / float(out["scale"]))
        for fs in f["scales"]
    ])
    if len(mults) == 1:
        mults, shifts = mults * cout, shifts * cout
    res = ar.mbqm(acc, np.array(mults), np.array(shifts)) + out["zero_point"]
    lo, hi = act_range(p["activation"], out["scale"], out["zero_point"])
    return np.clip(res, lo, hi)


def fully_connected(v, ar):
    p = v["params"]
    (inp,) = v["inputs"]
    out = v["output"]
    x = arr(inp).reshape(-1, inp["shape"][-1]) - inp["zero_point"]
    f = p["filter"]
    wt = np.array(f["data"], dtype=np.int64).reshape(f["shape"])
    wt = wt - np.array(f["zero_points"], dtype=np.int64).reshape(-1, 1)
    acc = x @ wt.T + np.array(p["bias"]["data"], dtype=np.int64)
    assert_i32(acc, "accumulator")
    if len(f["scales"]) > 1:
        # Per-channel: double(input_scale) * double(filter_scale) / double(out)
        qs = [ar.quantize_multiplier(float(inp["scale"]) * float(fs) / float(out["scale"]))
              for fs in f["scales"]]
    else:
        # Per-tensor: GetQuantizedConvolutionMultipler computes the
        # input*filter scale product in float32, then divides in double.
        prod = float(f32(inp["scale"]) * f32(f["scales"][0]))
        qs = [ar.quantize_multiplier(prod / float(out["scale"]))] * wt.shape[0]
    mults, shifts = zip(*qs)
    res = ar.mbqm(acc, np.array(mults), np.array(shifts)) + out["zero_point"]
    lo, hi = act_range(p["activation"], out["scale"], out["zero_point"])
    return np.clip(res, lo, hi).reshape(out["shape"])


def pool(v, ar, kind):
    p = v["params"]
    (inp,) = v["inputs"]
    out = v["output"]
    assert inp["scale"] == out["scale"] and inp["zero_point"] == out["zero_point"]
    x = arr(inp)
    n, h, w, c = x.shape
    fh, fw = p["filter"]
    sh, sw = p["stride"]
    oh, pt = compute_padding(h, fh, sh, 1, p["padding"])
    ow, pl = compute_padding(w, fw, sw, 1, p["padding"])
    res = np.zeros((n, oh, ow, c), dtype=np.int64)
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * sh - pt, ox * sw - pl
            ys, ye = max(0, -y0), min(fh, h - y0)
            xs, xe = max(0, -x0), min(fw, w - x0)
            win = x[:, y0 + ys:y0 + ye, x0 + xs:x0 + xe, :]
            if kind == "max":
                res[:, oy, ox, :] = win.max(axis=(1, 2))
            else:
                count = (ye - ys) * (xe - xs)
                acc = win.sum(axis=(1, 2))
                res[:, oy, ox, :] = np.where(acc > 0, tdiv(acc + count // 2, count),
                                             tdiv(acc - count // 2, count))
    lo, hi = act_range(p["activation"], out["scale"], out["zero_point"])
    return np.clip(res, lo, hi)


def add(v, ar):
    p = v["params"]
    a, b = v["inputs"]
    out = v["output"]
    left_shift = 20
    s1, s2, so = f32(a["scale"]), f32(b["scale"]), f32(out["scale"])
    twice_max = float(f32(2) * max(s1, s2))  # float expression, stored as double
    m1 = ar.quantize_multiplier(float(s1) / twice_max)
    m2 = ar.quantize_multiplier(float(s2) / twice_max)
    mo = ar.quantize_multiplier(twice_max / float(f32(1 << left_shift) * so))
    x1 = (arr(a) - a["zero_point"]) * (1 << left_shift)
    x2 = (arr(b) - b["zero_point"]) * (1 << left_shift)
    y1 = ar.mbqm_smaller_than_one_exp(x1, *m1)
    y2 = ar.mbqm_smaller_than_one_exp(x2, *m2)
    raw = ar.mbqm_smaller_than_one_exp(assert_i32(y1 + y2, "sum"), *mo) + out["zero_point"]
    lo, hi = act_range(p["activation"], out["scale"], out["zero_point"])
    return np.clip(raw, lo, hi)


def concat(v, ar):
    out = v["output"]
    assert v["params"]["axis"] == 3 and v["params"]["activation"] == "NONE"
    parts = []
    for t in v["inputs"]:
        x = arr(t)
        if (t["scale"], t["zero_point"]) != (out["scale"], out["zero_point"]):
            m = ar.quantize_multiplier(float(t["scale"]) / float(out["scale"]))
            x = np.clip(ar.mbqm(x - t["zero_point"], *m) + out["zero_point"], -128, 127)
        parts.append(x)
    return np.concatenate(parts, axis=3)


def requantize(v, ar):
    (inp,) = v["inputs"]
    out = v["output"]
    m = ar.quantize_multiplier(float(inp["scale"]) / float(out["scale"]))
    return np.clip(ar.mbqm(arr(inp) - inp["zero_point"], *m) + out["zero_point"], -128, 127)


def relu_x(v, ar, act_max):
    (inp,) = v["inputs"]
    out = v["output"]
    m = ar.quantize_multiplier(float(inp["scale"]) / float(out["scale"]))
    # QuantizedReluX: roundf on float32 act / scale
    lo = max(-128, out["zero_point"] + int(round_half_away(float(f32(0.0) / f32(out["scale"])))))
    hi = 127 if act_max is None else min(
        127, out["zero_point"] + int(round_half_away(float(f32(act_max) / f32(out["scale"])))))
    res = ar.mbqm(arr(inp) - inp["zero_point"], *m) + out["zero_point"]
    return np.clip(res, lo, hi)


# ---- softmax (reference_ops::Softmax, gemmlowp fixed point) ---------------


def exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    constant_term = 1895147668  # exp(-1/8), Q0.31
    constant_1_over_3 = 715827883
    x = a + (1 << 28)  # + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    t = rdbpot(srdhm(x4_over_4 + x3, constant_1_over_3) + x2, 1)
    return constant_term + srdhm(constant_term, x + t)


def exp_on_negative_values(a, integer_bits=5):
    """gemmlowp::exp_on_negative_values for FixedPoint<int32, 5> input."""
    a = np.asarray(a, dtype=np.int64)
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    mask = one_quarter - 1
    a_mod_q_minus_q = (a & mask) - one_quarter
    # Rescale<0> from 5 integer bits: saturating left shift by 5.
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        sat_shift_left(a_mod_q_minus_q, integer_bits))
    remainder = a_mod_q_minus_q - a
    for exponent, mult in ((-2, 1672461947), (-1, 1302514674), (0, 790015084),
                           (1, 290630308), (2, 39332535), (3, 720401), (4, 242)):
        if integer_bits > exponent:
            bit = 1 << (frac_bits + exponent)
            result = np.where((remainder & bit) != 0, srdhm(result, mult), result)
    return np.where(a == 0, I32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a):
    a = np.asarray(a, dtype=np.int64)
    s = a + I32_MAX  # RoundingHalfSum(a, One), in 64 bits
    half_denominator = tdiv(s + np.where(s >= 0, 1, -1), 2)
    c48_17 = 1515870810
    cneg32_17 = -1010580540
    x = c48_17 + srdhm(half_denominator, cneg32_17)
    one_f2 = 1 << 29
    for _ in range(3):
        hdx = srdhm(half_denominator, x)
        one_minus = one_f2 - hdx
        x = x + sat_shift_left(srdhm(x, one_minus), 2)
    return sat_shift_left(x, 1)


def count_leading_zeros32(x):
    x = int(x) & 0xFFFFFFFF
    return 32 - x.bit_length()


def softmax(v, ar):
    (inp,) = v["inputs"]
    out = v["output"]
    beta = float(v["params"]["beta"])
    assert out["scale"] == 1.0 / 256 and out["zero_point"] == -128
    # PreprocessSoftmaxScaling(beta, input_scale, kScaledDiffIntegerBits=5)
    max_real = float((1 << 30) - 1) if ar.single else float((1 << 31) - 1)
    real = min(beta * float(inp["scale"]) * (1 << (31 - 5)), max_real)
    mult, left_shift = ar.quantize_multiplier(real)
    assert left_shift >= 0
    # CalculateInputRadius(5, left_shift, 31)
    radius = math.floor(1.0 * ((1 << 5) - 1) * (1 << (31 - 5)) / (1 << left_shift))
    diff_min = -radius
    x = arr(inp)
    depth = x.shape[-1]
    rows = x.reshape(-1, depth)
    res = np.zeros_like(rows)
    for r, row in enumerate(rows):
        diff = row - row.max()
        use = diff >= diff_min
        rescaled = ar.mbqm_greater_than_one(np.where(use, diff, 0), mult, left_shift)
        e = exp_on_negative_values(rescaled)
        # sum in Q12.19: Rescale<12> of Q0.31 = RoundingDivideByPOT(raw, 12)
        sum_of_exps = int(np.where(use, rdbpot(e, 12), 0).sum())
        assert 0 < sum_of_exps <= I32_MAX
        # GetReciprocal(sum, 12)
        headroom_plus_one = count_leading_zeros32(sum_of_exps)
        num_bits_over_unit = 12 - headroom_plus_one
        shifted_sum_minus_one = ((sum_of_exps << headroom_plus_one) - (1 << 31)) & 0xFFFFFFFF
        if shifted_sum_minus_one >= 1 << 31:
            shifted_sum_minus_one -= 1 << 32
        shifted_scale = one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one)
        exponent = num_bits_over_unit + 31 - 8
        unsat = rdbpot(srdhm(shifted_scale, e), exponent)
        res[r] = np.where(use, np.clip(unsat - 128, -128, 127), -128)
    return res.reshape(x.shape)


KERNELS = {
    "conv2d": lambda v, ar: conv_like(v, ar, False),
    "depthwise_conv2d": lambda v, ar: conv_like(v, ar, True),
    "fully_connected": fully_connected,
    "max_pool": lambda v, ar: pool(v, ar, "max"),
    "avg_pool": lambda v, ar: pool(v, ar, "avg"),
    "add": add,
    "concat": concat,
    "requantize": requantize,
    "relu": lambda v, ar: relu_x(v, ar, None),
    "relu6": lambda v, ar: relu_x(v, ar, 6.0),
    "softmax": softmax,
}


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_DIR
    files = sorted(glob.glob(os.path.join(d, "*.json")))
    if not files:
        print(f"no vectors in {d}")
        return 1
    modes = {"double": Arith(False), "single": Arith(True)}
    ok_double = 0
    print(f"{'case':28s} {'op':18s} {'double-rounding':>18s} {'single-rounding':>18s}")
    for fn in files:
        v = json.load(open(fn))
        want = np.array(v["output"]["data"], dtype=np.int64)
        cols = []
        for mode, ar in modes.items():
            try:
                got = KERNELS[v["op"]](v, ar).reshape(-1)
                bad = int((got != want).sum())
                cols.append("exact" if bad == 0 else f"{bad}/{want.size} differ")
                if mode == "double" and bad == 0:
                    ok_double += 1
            except Exception as e:  # report, don't hide
                cols.append(f"error: {type(e).__name__}: {e}")
        print(f"{v['name']:28s} {v['op']:18s} {cols[0]:>18s} {cols[1]:>18s}")
    n = len(files)
    print(f"double-rounding: {ok_double} passed, {n - ok_double} failed")
    return 0 if ok_double == n else 1


if __name__ == "__main__":
    sys.exit(main())
