//! Branch-free `f32` transcendental functions that the compiler can vectorise (the libm
//! calls behind `f32::exp` and friends cannot be), for the elementwise kernels.
//!
//! Accuracy (checked in the tests against `f64`): `exp` within 2 ulp, `log1p_unit` within
//! 2 ulp on `[0, 1]`, `tanh` within 3e-7 relative, `sigmoid` within 3e-7 relative.
//! [`erf`] is the contract's A&S 7.1.26 formula ([`crate::op::erf`]) written with this
//! `exp`; the two agree within 3e-7 (2 ulp of the largest values).

/// `e^x`: Cephes' `expf` polynomial after a Cody-Waite reduction `x = n ln 2 + r`, scaled by
/// `2^n` in two halves so that results down into the subnormals and up to overflow (inf)
/// come out right. NaN propagates.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5 * 2^23 rounds to an integer (to nearest even) and leaves it in the low bits.
    const MAGIC: f32 = 12_582_912.0;
    let xc = x.clamp(-104.0, 89.0);
    let t = xc * LOG2E + MAGIC;
    let n = t - MAGIC;
    let ni = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let p = p * r * r + r + 1.0;
    // 2^n = 2^h 2^(n - h), both factors normal for n in -150..=129.
    let h = ni >> 1;
    let s1 = f32::from_bits((h.wrapping_add(127) << 23) as u32);
    let s2 = f32::from_bits((ni.wrapping_sub(h).wrapping_add(127) << 23) as u32);
    p * s1 * s2
}

/// `ln(1 + e)` for `e` in `[0, 1]`: `2 atanh(s)` with `s = e / (2 + e)` (no cancellation),
/// as an odd series in `s <= 1/3`.
#[inline(always)]
pub fn log1p_unit(e: f32) -> f32 {
    let s = e / (2.0 + e);
    let z = s * s;
    // 2 (s + s^3/3 + s^5/5 + ... + s^17/17): the next term is below 2^-27 relative.
    let mut p = 1.0 / 17.0;
    p = p * z + 1.0 / 15.0;
    p = p * z + 1.0 / 13.0;
    p = p * z + 1.0 / 11.0;
    p = p * z + 1.0 / 9.0;
    p = p * z + 1.0 / 7.0;
    p = p * z + 1.0 / 5.0;
    p = p * z + 1.0 / 3.0;
    2.0 * s + 2.0 * s * z * p
}

/// `log(1 + exp(z))` without overflow.
#[inline(always)]
pub fn softplus(z: f32) -> f32 {
    z.max(0.0) + log1p_unit(exp(-z.abs()))
}

/// The logistic function, from `exp(-|x|)` (no overflow, accurate in both tails).
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    let e = exp(-x.abs());
    let d = 1.0 / (1.0 + e);
    if x >= 0.0 {
        d
    } else {
        e * d
    }
}

/// `tanh`: Cephes' `tanhf` polynomial below 0.625, `1 - 2 / (e^{2|x|} + 1)` above.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let mut p = -5.704_988_7e-3;
    p = p * z + 2.063_909e-2;
    p = p * z - 5.373_971_6e-2;
    p = p * z + 1.333_144_2e-1;
    p = p * z - 3.333_328e-1;
    let small = x + x * z * p;
    // (Not `a.min(10.0)`, which would turn NaN into 10.)
    let big = 1.0 - 2.0 / (exp(2.0 * if a > 10.0 { 10.0 } else { a }) + 1.0);
    let big = if x < 0.0 { -big } else { big };
    if a < 0.625 {
        small
    } else {
        big
    }
}

/// The contract's error function ([`crate::op::erf`], A&S 7.1.26) with this module's `exp`.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let y = 1.0
        - (((((1.061_405_4 * t - 1.453_152_1) * t) + 1.421_413_7) * t - 0.284_496_74) * t
            + 0.254_829_6)
            * t
            * exp(-a * a);
    // x.signum() * y, but erf(0) = 0 and NaN propagates as in the contract's version.
    if x < 0.0 {
        -y
    } else if x > 0.0 {
        y
    } else {
        x * y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f64) -> f64 {
        let b32 = b as f32;
        let ulp = (f32::from_bits(b32.abs().to_bits() + 1) - b32.abs()) as f64;
        (a as f64 - b).abs() / ulp
    }

    fn grid(lo: f32, hi: f32, n: usize) -> impl Iterator<Item = f32> {
        (0..=n).map(move |i| lo + (hi - lo) * i as f32 / n as f32)
    }

    #[test]
    fn exp_accuracy_and_limits() {
        for x in grid(-87.0, 88.5, 200_000) {
            let e = ulps(exp(x), (x as f64).exp());
            assert!(e <= 2.0, "exp({x}) = {} ({e} ulp)", exp(x));
        }
        // Subnormal results stay close in absolute terms.
        for x in grid(-103.0, -87.5, 1000) {
            let want = (x as f64).exp();
            assert!(
                (exp(x) as f64 - want).abs() <= 3e-45 + 1e-6 * want,
                "exp({x})"
            );
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(89.0), f32::INFINITY);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(-200.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn log1p_sigmoid_tanh_erf_accuracy() {
        for e in grid(0.0, 1.0, 100_000) {
            let err = ulps(log1p_unit(e), (e as f64).ln_1p());
            assert!(e == 0.0 || err <= 2.0, "log1p({e}): {err} ulp");
        }
        assert_eq!(log1p_unit(0.0), 0.0);
        assert!((log1p_unit(1e-30) - 1e-30).abs() < 1e-36);
        for x in grid(-30.0, 30.0, 100_000) {
            let xd = x as f64;
            let s = 1.0 / (1.0 + (-xd).exp());
            assert!((sigmoid(x) as f64 - s).abs() <= 3e-7 * s, "sigmoid({x})");
            let t = xd.tanh();
            assert!(
                (tanh(x) as f64 - t).abs() <= 3e-7 * t.abs() + 1e-30,
                "tanh({x}) = {} vs {t}",
                tanh(x)
            );
            assert!(
                (erf(x) - crate::op::erf(x)).abs() <= 3e-7,
                "erf({x}) = {} vs {}",
                erf(x),
                crate::op::erf(x)
            );
            let sp = xd.exp().ln_1p();
            assert!(
                (softplus(x) as f64 - sp).abs() <= 3e-7 * sp,
                "softplus({x})"
            );
        }
        assert_eq!(tanh(100.0), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
        assert_eq!(sigmoid(-200.0), 0.0);
        assert_eq!(sigmoid(200.0), 1.0);
        assert!(tanh(f32::NAN).is_nan() && sigmoid(f32::NAN).is_nan());
    }
}
