//! Go's `math` package as Prometheus 2.42 runs it: Debian's `prometheus`
//! 2.42.0 is built with Go 1.19 for amd64, so its PromQL math functions are
//! Go 1.19's, not the platform libm's. They are not correctly rounded, so
//! libm (which Rust's `f64` methods call) answers differently in the last
//! bit for about one input in three.
//!
//! This module reimplements the same algorithms with the same operation
//! order, so results are bit-identical:
//!
//! - `exp` and `log` follow Go's amd64 assembly (`exp_amd64.s`,
//!   `log_amd64.s`), not the pure-Go versions. `exp` has two code paths in Go,
//!   chosen at start-up: with fused multiply-adds when the CPU has AVX and FMA
//!   (`useFMA`), without otherwise. [`exp`] makes the same choice for the CPU
//!   it runs on, so it agrees with a Prometheus on the same machine.
//! - Everything else (`sin cos tan asin acos atan atan2 sinh cosh tanh asinh
//!   acosh atanh log1p log2 log10 pow frexp ldexp modf`) is pure Go on amd64
//!   (Cephes and FreeBSD msun ports) and follows `src/math/*.go` of Go 1.19.
//! - `sqrt`, `floor`, `ceil`, `trunc`, `abs` and `%` (`math.Mod`) are exact
//!   in both languages and are not repeated here.
//!
//! Constants written as Go constant expressions (`Pi/2`, `4/Pi`, `1/Ln10`)
//! are exact in Go and rounded once; the values here are those roundings.
//!
//! This module owns numerics only; it must not know about PromQL values.
//!
//! Constants keep the digits Go's source writes them with, so they can be
//! checked against it; they round to the same `f64` either way.
#![allow(clippy::excessive_precision)]

use std::f64::consts::{FRAC_PI_2, FRAC_PI_4, PI};

const MASK: u64 = 0x7ff;
const SHIFT: u32 = 52;
const BIAS: i64 = 1023;
/// `1/Ln10` rounded once, as Go's constant expression is.
const INV_LN10: f64 = std::f64::consts::LOG10_E;
/// `1/Ln2` rounded once.
const INV_LN2: f64 = std::f64::consts::LOG2_E;
/// `4/Pi` rounded once (`2/Pi` times two is exact).
const FOUR_OVER_PI: f64 = 2.0 * std::f64::consts::FRAC_2_PI;

/// Whether Go's `exp` takes its FMA path on this CPU (`cpu.X86.HasAVX &&
/// cpu.X86.HasFMA`, decided once at start-up).
fn use_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static FMA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *FMA.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx") && std::arch::is_x86_feature_detected!("fma")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `math.Exp` (amd64 assembly, after Shibata's SLEEF method).
pub fn exp(x: f64) -> f64 {
    exp_with(x, use_fma())
}

/// `math.Exp` with the FMA path chosen explicitly (for tests).
pub fn exp_with(x: f64, fma: bool) -> f64 {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    const LN2U: f64 = 0.693_147_180_559_662_956_511_601_805_686_950_683_593_75;
    const LN2L: f64 = 0.282_352_905_630_315_771_225_884_481_750_134_360_255_254_120_68e-12;
    const OVERFLOW: f64 = 7.097_827_128_933_84e2;
    // Taylor coefficients 1/8! .. 1/3!, then 1/2 and 1.
    const C: [f64; 6] = [
        2.480_158_730_158_730_158_7e-5,
        1.984_126_984_126_984_127e-4,
        1.388_888_888_888_888_888_9e-3,
        8.333_333_333_333_333_333_3e-3,
        4.166_666_666_666_666_666_7e-2,
        1.666_666_666_666_666_666_7e-1,
    ];
    if !x.is_finite() {
        return if x == f64::NEG_INFINITY { 0.0 } else { x };
    }
    if x > OVERFLOW {
        return f64::INFINITY;
    }
    // CVTSD2SL: round to nearest even; out of range gives i32::MIN.
    let scaled = LOG2E * x;
    let k: i32 = if scaled.abs() < 2_147_483_648.0 {
        scaled.round_ties_even() as i32
    } else {
        i32::MIN
    };
    let kf = f64::from(k);
    let mut r;
    if fma {
        r = (-LN2U).mul_add(kf, x);
        r = (-LN2L).mul_add(kf, r);
        r *= 0.0625;
        let mut p = C[0];
        for c in &C[1..] {
            p = p.mul_add(r, *c);
        }
        p = p.mul_add(r, 0.5);
        p = p.mul_add(r, 1.0);
        r *= p;
        for _ in 0..3 {
            r *= r + 2.0;
        }
        r = r.mul_add(r + 2.0, 1.0);
    } else {
        r = x - LN2U * kf;
        r -= LN2L * kf;
        r *= 0.0625;
        let mut p = C[0];
        for c in &C[1..] {
            p = p * r + *c;
        }
        p = p * r + 0.5;
        p = p * r + 1.0;
        r *= p;
        for _ in 0..4 {
            r *= r + 2.0;
        }
        r += 1.0;
    }
    // r * 2**k, with Go's handling of results below the normal range.
    let biased = i64::from(k) + BIAS;
    if biased <= 0 {
        if biased < -52 {
            return 0.0;
        }
        r *= f64::from_bits(((biased + 1022) as u64) << SHIFT);
        return r * f64::from_bits(1u64 << SHIFT);
    }
    if biased >= 0x7ff {
        return f64::INFINITY;
    }
    r * f64::from_bits((biased as u64) << SHIFT)
}

/// `math.Log` (amd64 assembly; FreeBSD's `e_log.c` formula, with the
/// assembly's own frexp that does not normalise subnormals).
pub fn log(x: f64) -> f64 {
    const HSQRT2: f64 = std::f64::consts::FRAC_1_SQRT_2; // Sqrt2/2, 0x3fe6a09e667f3bcd
    const LN2HI: f64 = 6.931_471_803_691_238_164_90e-1;
    const LN2LO: f64 = 1.908_214_929_270_587_700_02e-10;
    const L: [f64; 7] = [
        6.666_666_666_666_735_130e-1,
        3.999_999_999_940_941_908e-1,
        2.857_142_874_366_239_149e-1,
        2.222_219_843_214_978_396e-1,
        1.818_357_216_161_805_012e-1,
        1.531_383_769_920_937_332e-1,
        1.479_819_860_511_658_591e-1,
    ];
    let bits = x.to_bits();
    if bits & !(1u64 << 63) == 0 {
        return f64::NEG_INFINITY;
    }
    if (bits as i64) < 0 {
        return f64::from_bits(0x7ff8_0000_0000_0001);
    }
    if bits >= 0x7ff0_0000_0000_0000 {
        return x;
    }
    let mut f1 = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3fe0_0000_0000_0000);
    let mut k = (((bits >> SHIFT) & MASK) as i64 - 0x3fe) as f64;
    // CMPSD's "not less than": the boundary itself is doubled.
    if f1 <= HSQRT2 {
        k -= 1.0;
        f1 *= 2.0;
    }
    let f = f1 - 1.0;
    let s = f / (2.0 + f);
    let s2 = s * s;
    let s4 = s2 * s2;
    let t1 = s2 * (((L[6] * s4 + L[4]) * s4 + L[2]) * s4 + L[0]);
    let t2 = s4 * ((L[5] * s4 + L[3]) * s4 + L[1]);
    let r = t1 + t2;
    let hfsq = 0.5 * f * f;
    k * LN2HI - ((hfsq - (s * (hfsq + r) + k * LN2LO)) - f)
}

/// `math.Log10`: `Log(x) * (1/Ln10)`.
pub fn log10(x: f64) -> f64 {
    log(x) * INV_LN10
}

/// `math.Log2`: exact for powers of two, else `Log(frac)*(1/Ln2) + exp`.
pub fn log2(x: f64) -> f64 {
    let (frac, e) = frexp(x);
    if frac == 0.5 {
        return f64::from(e - 1);
    }
    log(frac) * INV_LN2 + f64::from(e)
}

/// `math.Log1p` (FreeBSD `s_log1p.c` as Go simplifies it).
pub fn log1p(x: f64) -> f64 {
    const SQRT2M1: f64 = 4.142_135_623_730_950_488_017e-1;
    const SQRT2HALFM1: f64 = -2.928_932_188_134_524_755_992e-1;
    const SMALL: f64 = 1.0 / (1u64 << 29) as f64;
    const TINY: f64 = 1.0 / (1u64 << 54) as f64;
    const TWO53: f64 = (1u64 << 53) as f64;
    const LN2HI: f64 = 6.931_471_803_691_238_164_90e-1;
    const LN2LO: f64 = 1.908_214_929_270_587_700_02e-10;
    const LP: [f64; 7] = [
        6.666_666_666_666_735_130e-1,
        3.999_999_999_940_941_908e-1,
        2.857_142_874_366_239_149e-1,
        2.222_219_843_214_978_396e-1,
        1.818_357_216_161_805_012e-1,
        1.531_383_769_920_937_332e-1,
        1.479_819_860_511_658_591e-1,
    ];
    if x < -1.0 || x.is_nan() {
        return f64::NAN;
    }
    if x == -1.0 {
        return f64::NEG_INFINITY;
    }
    if x == f64::INFINITY {
        return f64::INFINITY;
    }
    let absx = x.abs();
    let mut f = 0.0;
    let mut iu: u64 = 0;
    let mut k: i64 = 1;
    if absx < SQRT2M1 {
        if absx < SMALL {
            if absx < TINY {
                return x;
            }
            return x - x * x * 0.5;
        }
        if x > SQRT2HALFM1 {
            k = 0;
            f = x;
            iu = 1;
        }
    }
    let mut c = 0.0;
    if k != 0 {
        let mut u;
        if absx < TWO53 {
            u = 1.0 + x;
            iu = u.to_bits();
            k = (iu >> 52) as i64 - 1023;
            c = if k > 0 { 1.0 - (u - x) } else { x - (u - 1.0) };
            c /= u;
        } else {
            u = x;
            iu = u.to_bits();
            k = (iu >> 52) as i64 - 1023;
            c = 0.0;
        }
        iu &= 0x000f_ffff_ffff_ffff;
        if iu < 0x0006_a09e_667f_3bcd {
            u = f64::from_bits(iu | 0x3ff0_0000_0000_0000);
        } else {
            k += 1;
            u = f64::from_bits(iu | 0x3fe0_0000_0000_0000);
            iu = (0x0010_0000_0000_0000 - iu) >> 2;
        }
        f = u - 1.0;
    }
    let hfsq = 0.5 * f * f;
    let kf = k as f64;
    if iu == 0 {
        if f == 0.0 {
            if k == 0 {
                return 0.0;
            }
            c += kf * LN2LO;
            return kf * LN2HI + c;
        }
        let r = hfsq * (1.0 - 0.666_666_666_666_666_66 * f);
        if k == 0 {
            return f - r;
        }
        return kf * LN2HI - ((r - (kf * LN2LO + c)) - f);
    }
    let s = f / (2.0 + f);
    let z = s * s;
    let r = z
        * (LP[0] + z * (LP[1] + z * (LP[2] + z * (LP[3] + z * (LP[4] + z * (LP[5] + z * LP[6]))))));
    if k == 0 {
        return f - (hfsq - s * (hfsq + r));
    }
    kf * LN2HI - ((hfsq - (s * (hfsq + r) + (kf * LN2LO + c))) - f)
}

/// Go's `normalize`: subnormals scaled into the normal range.
fn normalize(x: f64) -> (f64, i32) {
    if x.abs() < f64::MIN_POSITIVE {
        (x * (1u64 << 52) as f64, -52)
    } else {
        (x, 0)
    }
}

/// `math.Frexp`: `x = frac * 2**exp` with `0.5 <= |frac| < 1`.
pub fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let (f, mut e) = normalize(x);
    let mut bits = f.to_bits();
    e += ((bits >> SHIFT) & MASK) as i32 - BIAS as i32 + 1;
    bits &= !(MASK << SHIFT);
    bits |= ((BIAS - 1) as u64) << SHIFT;
    (f64::from_bits(bits), e)
}

/// `math.Ldexp`: `frac * 2**exp`.
pub fn ldexp(frac: f64, exp: i64) -> f64 {
    if frac == 0.0 || !frac.is_finite() {
        return frac;
    }
    let (frac, e) = normalize(frac);
    let mut exp = exp + i64::from(e);
    let mut bits = frac.to_bits();
    exp += ((bits >> SHIFT) & MASK) as i64 - BIAS;
    if exp < -1075 {
        return 0.0_f64.copysign(frac);
    }
    if exp > 1023 {
        return if frac < 0.0 {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    let mut m = 1.0;
    if exp < -1022 {
        exp += 53;
        m = 1.0 / (1u64 << 53) as f64;
    }
    bits &= !(MASK << SHIFT);
    bits |= ((exp + BIAS) as u64) << SHIFT;
    m * f64::from_bits(bits)
}

/// `math.Modf`: integer and fractional parts, both with `f`'s sign.
pub fn modf(f: f64) -> (f64, f64) {
    if f < 1.0 {
        if f < 0.0 {
            let (i, fr) = modf(-f);
            return (-i, -fr);
        }
        if f == 0.0 {
            return (f, f);
        }
        return (0.0, f);
    }
    let mut bits = f.to_bits();
    let e = ((bits >> SHIFT) & MASK).wrapping_sub(BIAS as u64);
    if e < 64 - 12 {
        bits &= !((1u64 << (64 - 12 - e)) - 1);
    }
    let int = f64::from_bits(bits);
    (int, f - int)
}

/// Go's `int64(x)` on amd64 (CVTTSD2SQ): out of range gives `i64::MIN`.
fn go_int64(x: f64) -> i64 {
    if x.abs() < 9_223_372_036_854_775_808.0 {
        x as i64
    } else {
        i64::MIN
    }
}

fn is_odd_int(x: f64) -> bool {
    let (xi, xf) = modf(x);
    xf == 0.0 && go_int64(xi) & 1 == 1
}

/// `math.Pow` (Go 1.19: special cases, then `Exp(yf*Log(x))` times
/// repeated squaring of `Frexp(x)`).
pub fn pow(x: f64, y: f64) -> f64 {
    if y == 0.0 || x == 1.0 {
        return 1.0;
    }
    if y == 1.0 {
        return x;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 {
        if y < 0.0 {
            if is_odd_int(y) {
                return f64::INFINITY.copysign(x);
            }
            return f64::INFINITY;
        }
        if y > 0.0 {
            if is_odd_int(y) {
                return x;
            }
            return 0.0;
        }
    }
    if y.is_infinite() {
        if x == -1.0 {
            return 1.0;
        }
        if (x.abs() < 1.0) == (y == f64::INFINITY) {
            return 0.0;
        }
        return f64::INFINITY;
    }
    if x.is_infinite() {
        if x == f64::NEG_INFINITY {
            return pow(1.0 / x, -y);
        }
        if y < 0.0 {
            return 0.0;
        }
        if y > 0.0 {
            return f64::INFINITY;
        }
    }
    if y == 0.5 {
        return x.sqrt();
    }
    if y == -0.5 {
        return 1.0 / x.sqrt();
    }
    let (mut yi, mut yf) = modf(y.abs());
    if yf != 0.0 && x < 0.0 {
        return f64::NAN;
    }
    if yi >= 9_223_372_036_854_775_808.0 {
        if x == -1.0 {
            return 1.0;
        }
        if (x.abs() < 1.0) == (y > 0.0) {
            return 0.0;
        }
        return f64::INFINITY;
    }
    let mut a1 = 1.0;
    let mut ae: i64 = 0;
    if yf != 0.0 {
        if yf > 0.5 {
            yf -= 1.0;
            yi += 1.0;
        }
        a1 = exp(yf * log(x));
    }
    let (mut x1, xe) = frexp(x);
    let mut xe = i64::from(xe);
    let mut i = go_int64(yi);
    while i != 0 {
        if !(-(1 << 12)..=(1 << 12)).contains(&xe) {
            ae += xe;
            break;
        }
        if i & 1 == 1 {
            a1 *= x1;
            ae += xe;
        }
        x1 *= x1;
        xe <<= 1;
        if x1 < 0.5 {
            x1 += x1;
            xe -= 1;
        }
        i >>= 1;
    }
    if y < 0.0 {
        a1 = 1.0 / a1;
        ae = -ae;
    }
    ldexp(a1, ae)
}

const PI4A: f64 = 7.853_981_256_484_985_351_56e-1;
const PI4B: f64 = 3.774_894_707_930_798_176_68e-8;
const PI4C: f64 = 2.695_151_429_079_059_526_45e-15;
/// Above this, Go reduces trigonometric arguments with Payne-Hanek.
const REDUCE_THRESHOLD: f64 = (1u64 << 29) as f64;

const SIN: [f64; 6] = [
    1.589_623_015_765_465_680_60e-10,
    -2.505_074_776_285_780_728_66e-8,
    2.755_731_362_138_572_452_13e-6,
    -1.984_126_982_958_953_859_96e-4,
    8.333_333_333_322_118_588_78e-3,
    -1.666_666_666_666_663_072_95e-1,
];
const COS: [f64; 6] = [
    -1.135_853_652_138_768_173_00e-11,
    2.087_570_084_197_473_167_78e-9,
    -2.755_731_417_929_673_881_12e-7,
    2.480_158_728_885_170_453_48e-5,
    -1.388_888_888_887_305_641_16e-3,
    4.166_666_666_666_659_292_18e-2,
];

/// The binary digits of 4/pi, 64 bits a word (`4/pi = Σ w[i]·2^(-64·i)`).
const M_PI4: [u64; 20] = [
    0x0000_0000_0000_0001,
    0x45f3_06dc_9c88_2a53,
    0xf84e_afa3_ea69_bb81,
    0xb6c5_2b32_7887_2083,
    0xfca2_c757_bd77_8ac3,
    0x6e48_dc74_849b_a5c0,
    0x0c92_5dd4_13a3_2439,
    0xfc3b_d639_6253_4e7d,
    0xd104_6bea_5d76_8909,
    0xd338_e04d_68be_fc82,
    0x7323_ac73_06a6_73e9,
    0x3908_bf17_7bf2_5076,
    0x3ff1_2fff_bc0b_301f,
    0xde5e_2316_b414_da3e,
    0xda6c_fd9e_4f96_136e,
    0x9e8c_7ecd_3cbf_d45a,
    0xea4f_758f_d7cb_e2f6,
    0x7a0e_73ef_14a5_25d4,
    0xd7f6_bf62_3f1a_ba10,
    0xac06_608d_f8f6_d757,
];

/// Payne-Hanek reduction of `x >= 2**29` by pi/4: octant and remainder.
fn trig_reduce(x: f64) -> (u64, f64) {
    if x < FRAC_PI_4 {
        return (0, x);
    }
    let mut ix = x.to_bits();
    let exp = ((ix >> SHIFT) & MASK) as i64 - BIAS - i64::from(SHIFT);
    ix &= !(MASK << SHIFT);
    ix |= 1 << SHIFT;
    let digit = ((exp + 61) / 64) as usize;
    let bitshift = ((exp + 61) % 64) as u32;
    // Go's shifts by 64 or more give 0.
    let shl = |v: u64, s: u32| v.checked_shl(s).unwrap_or(0);
    let shr = |v: u64, s: u32| v.checked_shr(s).unwrap_or(0);
    let z0 = shl(M_PI4[digit], bitshift) | shr(M_PI4[digit + 1], 64 - bitshift);
    let z1 = shl(M_PI4[digit + 1], bitshift) | shr(M_PI4[digit + 2], 64 - bitshift);
    let z2 = shl(M_PI4[digit + 2], bitshift) | shr(M_PI4[digit + 3], 64 - bitshift);
    let z2hi = ((u128::from(z2) * u128::from(ix)) >> 64) as u64;
    let z1prod = u128::from(z1) * u128::from(ix);
    let (z1hi, z1lo) = ((z1prod >> 64) as u64, z1prod as u64);
    let z0lo = z0.wrapping_mul(ix);
    let (lo, carry) = z1lo.overflowing_add(z2hi);
    let hi = z0lo.wrapping_add(z1hi).wrapping_add(u64::from(carry));
    let mut j = hi >> 61;
    let mut hi = (hi << 3) | (lo >> 61);
    let lz = hi.leading_zeros();
    let e = (BIAS as u64).wrapping_sub(u64::from(lz) + 1);
    hi = shl(hi, lz + 1) | shr(lo, 64u32.wrapping_sub(lz + 1));
    hi >>= 64 - SHIFT;
    hi |= e << SHIFT;
    let mut z = f64::from_bits(hi);
    if j & 1 == 1 {
        j += 1;
        j &= 7;
        z -= 1.0;
    }
    (j, z * FRAC_PI_4)
}

/// Octant and reduced argument as `sin`, `cos` and `tan` share them.
fn reduce(x: f64) -> (u64, f64) {
    if x >= REDUCE_THRESHOLD {
        return trig_reduce(x);
    }
    let mut j = (x * FOUR_OVER_PI) as u64;
    let mut y = j as f64;
    if j & 1 == 1 {
        j += 1;
        y += 1.0;
    }
    (j, ((x - y * PI4A) - y * PI4B) - y * PI4C)
}

fn sin_poly(z: f64, zz: f64) -> f64 {
    z + z
        * zz
        * (((((SIN[0] * zz + SIN[1]) * zz + SIN[2]) * zz + SIN[3]) * zz + SIN[4]) * zz + SIN[5])
}

fn cos_poly(zz: f64) -> f64 {
    1.0 - 0.5 * zz
        + zz * zz
            * (((((COS[0] * zz + COS[1]) * zz + COS[2]) * zz + COS[3]) * zz + COS[4]) * zz + COS[5])
}

/// `math.Sin` (Cephes `sin.c`).
pub fn sin(x: f64) -> f64 {
    if x == 0.0 || x.is_nan() {
        return x;
    }
    if x.is_infinite() {
        return f64::NAN;
    }
    let (mut sign, x) = if x < 0.0 { (true, -x) } else { (false, x) };
    let (mut j, z) = reduce(x);
    j &= 7;
    if j > 3 {
        sign = !sign;
        j -= 4;
    }
    let zz = z * z;
    let y = if j == 1 || j == 2 {
        cos_poly(zz)
    } else {
        sin_poly(z, zz)
    };
    if sign {
        -y
    } else {
        y
    }
}

/// `math.Cos` (Cephes `sin.c`).
pub fn cos(x: f64) -> f64 {
    if x.is_nan() || x.is_infinite() {
        return f64::NAN;
    }
    let mut sign = false;
    let (mut j, z) = reduce(x.abs());
    j &= 7;
    if j > 3 {
        j -= 4;
        sign = !sign;
    }
    if j > 1 {
        sign = !sign;
    }
    let zz = z * z;
    let y = if j == 1 || j == 2 {
        sin_poly(z, zz)
    } else {
        cos_poly(zz)
    };
    if sign {
        -y
    } else {
        y
    }
}

/// `math.Tan` (Cephes `tan.c`).
pub fn tan(x: f64) -> f64 {
    const P: [f64; 3] = [
        -1.309_369_391_813_837_776_46e4,
        1.153_516_648_385_874_161_40e6,
        -1.795_652_519_764_848_779_88e7,
    ];
    const Q: [f64; 4] = [
        1.368_129_634_706_929_546_78e4,
        -1.320_892_344_402_109_674_47e6,
        2.500_838_018_233_579_158_39e7,
        -5.386_957_559_294_546_298_81e7,
    ];
    if x == 0.0 || x.is_nan() {
        return x;
    }
    if x.is_infinite() {
        return f64::NAN;
    }
    let (sign, x) = if x < 0.0 { (true, -x) } else { (false, x) };
    // Unlike sin and cos, Go's tan does not reduce the octant modulo 8
    // on the fast path; only bit 1 is read below.
    let (j, z) = reduce(x);
    let zz = z * z;
    let mut y = if zz > 1e-14 {
        z + z
            * (zz * ((P[0] * zz + P[1]) * zz + P[2])
                / ((((zz + Q[0]) * zz + Q[1]) * zz + Q[2]) * zz + Q[3]))
    } else {
        z
    };
    if j & 2 == 2 {
        y = -1.0 / y;
    }
    if sign {
        -y
    } else {
        y
    }
}

/// Cephes' arctangent series on [0, 0.66].
fn xatan(x: f64) -> f64 {
    const P: [f64; 5] = [
        -8.750_608_600_031_904_122_785e-1,
        -1.615_753_718_733_365_076_637e1,
        -7.500_855_792_314_704_667_340e1,
        -1.228_866_684_490_136_173_410e2,
        -6.485_021_904_942_025_371_773e1,
    ];
    const Q: [f64; 5] = [
        2.485_846_490_142_306_297_962e1,
        1.650_270_098_316_988_542_046e2,
        4.328_810_604_912_902_668_951e2,
        4.853_903_996_359_136_964_868e2,
        1.945_506_571_482_613_964_425e2,
    ];
    let z = x * x;
    let z = z * ((((P[0] * z + P[1]) * z + P[2]) * z + P[3]) * z + P[4])
        / (((((z + Q[0]) * z + Q[1]) * z + Q[2]) * z + Q[3]) * z + Q[4]);
    x * z + x
}

/// Reduces a positive argument to [0, 0.66] for [`xatan`].
fn satan(x: f64) -> f64 {
    const MOREBITS: f64 = 6.123_233_995_736_765_886_130e-17;
    const TAN3PIO8: f64 = 2.414_213_562_373_095_048_80;
    if x <= 0.66 {
        return xatan(x);
    }
    if x > TAN3PIO8 {
        return FRAC_PI_2 - xatan(1.0 / x) + MOREBITS;
    }
    FRAC_PI_4 + xatan((x - 1.0) / (x + 1.0)) + 0.5 * MOREBITS
}

/// `math.Atan`.
pub fn atan(x: f64) -> f64 {
    if x == 0.0 {
        return x;
    }
    if x > 0.0 {
        satan(x)
    } else {
        -satan(-x)
    }
}

/// `math.Asin`.
pub fn asin(x: f64) -> f64 {
    if x == 0.0 {
        return x;
    }
    let (sign, x) = if x < 0.0 { (true, -x) } else { (false, x) };
    if x > 1.0 {
        return f64::NAN;
    }
    let mut temp = (1.0 - x * x).sqrt();
    if x > 0.7 {
        temp = FRAC_PI_2 - satan(temp / x);
    } else {
        temp = satan(x / temp);
    }
    if sign {
        -temp
    } else {
        temp
    }
}

/// `math.Acos`: `Pi/2 - Asin(x)`.
pub fn acos(x: f64) -> f64 {
    FRAC_PI_2 - asin(x)
}

/// `math.Atan2`.
pub fn atan2(y: f64, x: f64) -> f64 {
    if y.is_nan() || x.is_nan() {
        return f64::NAN;
    }
    if y == 0.0 {
        if x >= 0.0 && !x.is_sign_negative() {
            return 0.0_f64.copysign(y);
        }
        return PI.copysign(y);
    }
    if x == 0.0 {
        return FRAC_PI_2.copysign(y);
    }
    if x.is_infinite() {
        if x == f64::INFINITY {
            if y.is_infinite() {
                return FRAC_PI_4.copysign(y);
            }
            return 0.0_f64.copysign(y);
        }
        if y.is_infinite() {
            // 3*Pi/4 rounded once.
            return 2.356_194_490_192_344_928_846_982_537_459_627_f64.copysign(y);
        }
        return PI.copysign(y);
    }
    if y.is_infinite() {
        return FRAC_PI_2.copysign(y);
    }
    let q = atan(y / x);
    if x < 0.0 {
        if q <= 0.0 {
            return q + PI;
        }
        return q - PI;
    }
    q
}

/// `math.Sinh`.
pub fn sinh(x: f64) -> f64 {
    const P: [f64; 4] = [
        -0.630_767_364_049_771_699_118_478_725_1e6,
        -0.899_127_202_203_950_935_539_801_351_1e5,
        -0.289_421_135_598_956_380_728_466_036_6e4,
        -0.263_056_321_339_749_706_281_948_9e2,
    ];
    const Q: [f64; 3] = [
        -0.630_767_364_049_771_699_121_207_727_7e6,
        0.152_151_737_879_001_907_069_648_517_6e5,
        -0.173_678_953_558_233_699_533_450_911e3,
    ];
    let (sign, x) = if x < 0.0 { (true, -x) } else { (false, x) };
    let temp = if x > 21.0 {
        exp(x) * 0.5
    } else if x > 0.5 {
        let ex = exp(x);
        (ex - 1.0 / ex) * 0.5
    } else {
        let sq = x * x;
        let t = (((P[3] * sq + P[2]) * sq + P[1]) * sq + P[0]) * x;
        t / (((sq + Q[2]) * sq + Q[1]) * sq + Q[0])
    };
    if sign {
        -temp
    } else {
        temp
    }
}

/// `math.Cosh`.
pub fn cosh(x: f64) -> f64 {
    let x = x.abs();
    if x > 21.0 {
        return exp(x) * 0.5;
    }
    let ex = exp(x);
    (ex + 1.0 / ex) * 0.5
}

/// `math.Tanh` (Cephes `tanh.c`).
pub fn tanh(x: f64) -> f64 {
    const MAXLOG: f64 = 8.802_969_193_111_305_429_598_8e1;
    const P: [f64; 3] = [
        -9.643_991_794_250_522_386_28e-1,
        -9.928_772_310_019_185_865_64e1,
        -1.614_687_684_417_084_479_52e3,
    ];
    const Q: [f64; 3] = [
        1.128_116_784_916_329_314_02e2,
        2.235_488_390_601_004_485_83e3,
        4.844_063_053_251_254_860_48e3,
    ];
    let z = x.abs();
    if z > 0.5 * MAXLOG {
        return if x < 0.0 { -1.0 } else { 1.0 };
    }
    if z >= 0.625 {
        let s = exp(2.0 * z);
        let z = 1.0 - 2.0 / (s + 1.0);
        return if x < 0.0 { -z } else { z };
    }
    if x == 0.0 {
        return x;
    }
    let s = x * x;
    x + x * s * ((P[0] * s + P[1]) * s + P[2]) / (((s + Q[0]) * s + Q[1]) * s + Q[2])
}

const LN2: f64 = std::f64::consts::LN_2; // 0x3fe62e42fefa39ef
const LARGE: f64 = (1u64 << 28) as f64;
const NEAR_ZERO: f64 = 1.0 / (1u64 << 28) as f64;

/// `math.Asinh` (FreeBSD `s_asinh.c`).
pub fn asinh(x: f64) -> f64 {
    if x.is_nan() || x.is_infinite() {
        return x;
    }
    let (sign, x) = if x < 0.0 { (true, -x) } else { (false, x) };
    let temp = if x > LARGE {
        log(x) + LN2
    } else if x > 2.0 {
        log(2.0 * x + 1.0 / ((x * x + 1.0).sqrt() + x))
    } else if x < NEAR_ZERO {
        x
    } else {
        log1p(x + x * x / (1.0 + (1.0 + x * x).sqrt()))
    };
    if sign {
        -temp
    } else {
        temp
    }
}

/// `math.Acosh` (FreeBSD `e_acosh.c`).
pub fn acosh(x: f64) -> f64 {
    if x < 1.0 || x.is_nan() {
        return f64::NAN;
    }
    if x == 1.0 {
        return 0.0;
    }
    if x >= LARGE {
        return log(x) + LN2;
    }
    if x > 2.0 {
        return log(2.0 * x - 1.0 / (x + (x * x - 1.0).sqrt()));
    }
    let t = x - 1.0;
    log1p(t + (2.0 * t + t * t).sqrt())
}

/// `math.Atanh` (FreeBSD `e_atanh.c`).
pub fn atanh(x: f64) -> f64 {
    if !(-1.0..=1.0).contains(&x) || x.is_nan() {
        return f64::NAN;
    }
    if x == 1.0 {
        return f64::INFINITY;
    }
    if x == -1.0 {
        return f64::NEG_INFINITY;
    }
    let (sign, x) = if x < 0.0 { (true, -x) } else { (false, x) };
    let temp = if x < NEAR_ZERO {
        x
    } else if x < 0.5 {
        let t = x + x;
        0.5 * log1p(t + t * x / (1.0 - x))
    } else {
        0.5 * log1p((x + x) / (1.0 - x))
    };
    if sign {
        -temp
    } else {
        temp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unary(name: &str) -> Option<fn(f64) -> f64> {
        Some(match name {
            "exp" => exp,
            "log" => log,
            "log2" => log2,
            "log10" => log10,
            "log1p" => log1p,
            "sin" => sin,
            "cos" => cos,
            "tan" => tan,
            "asin" => asin,
            "acos" => acos,
            "atan" => atan,
            "sinh" => sinh,
            "cosh" => cosh,
            "tanh" => tanh,
            "asinh" => asinh,
            "acosh" => acosh,
            "atanh" => atanh,
            _ => return None,
        })
    }

    fn binary(name: &str) -> Option<fn(f64, f64) -> f64> {
        Some(match name {
            "pow" => pow,
            "atan2" => atan2,
            _ => return None,
        })
    }

    /// Checks lines `name xbits [ybits] resultbits` (hex) against this
    /// module; returns (checked, mismatches as text).
    fn check_reference(text: &str) -> (usize, Vec<String>) {
        let mut checked = 0;
        let mut bad = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let bits = |s: &str| f64::from_bits(u64::from_str_radix(s, 16).expect("hex bits"));
            let (got, want) = match parts.as_slice() {
                [name, x, want] => (unary(name).expect(name)(bits(x)), bits(want)),
                [name, x, y, want] => (binary(name).expect(name)(bits(x), bits(y)), bits(want)),
                _ => panic!("bad reference line {line:?}"),
            };
            checked += 1;
            let same = got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan());
            if !same {
                bad.push(format!(
                    "{line}: got {:x} ({got:e}), want {want:e}",
                    got.to_bits()
                ));
            }
        }
        (checked, bad)
    }

    /// Values Go 1.19's `math` answers on amd64 with AVX+FMA (see
    /// `gomath_reference.txt` for how they were made).
    #[test]
    fn matches_go_reference_values() {
        // The table was made on a CPU with AVX+FMA; elsewhere the functions
        // built on `exp` take Go's other path (checked by the next test).
        let text = include_str!("gomath_reference.txt");
        let text: String = text
            .lines()
            .filter(|l| {
                use_fma()
                    || !(l.starts_with("exp ")
                        || l.starts_with("sinh ")
                        || l.starts_with("cosh ")
                        || l.starts_with("tanh ")
                        || l.starts_with("pow "))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let (checked, bad) = check_reference(&text);
        assert!(checked > 100, "only {checked} reference values");
        assert!(
            bad.is_empty(),
            "{} of {checked} differ from Go:\n{}",
            bad.len(),
            bad.join("\n")
        );
    }

    /// Go's `exp` without FMA (`GODEBUG=cpu.fma=off`).
    #[test]
    fn exp_without_fma_matches_go() {
        for line in include_str!("gomath_reference_nofma.txt")
            .lines()
            .filter(|l| !l.starts_with('#'))
        {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [_, x, want] = parts.as_slice() else {
                continue;
            };
            let x = f64::from_bits(u64::from_str_radix(x, 16).unwrap());
            let want = u64::from_str_radix(want, 16).unwrap();
            let got = exp_with(x, false);
            assert!(
                got.to_bits() == want || (got.is_nan() && f64::from_bits(want).is_nan()),
                "exp({x:e}) without FMA: got {got:e}, want {:e}",
                f64::from_bits(want)
            );
        }
    }

    /// A large table made by Go, given by path (not committed): run with
    /// `GOMATH_REFERENCE=/path cargo test --lib gomath -- --ignored`.
    #[test]
    #[ignore]
    fn matches_large_go_reference() {
        let path = std::env::var("GOMATH_REFERENCE").expect("GOMATH_REFERENCE");
        let text = std::fs::read_to_string(&path).expect("reference file");
        let (checked, bad) = check_reference(&text);
        println!("{checked} values checked, {} differ", bad.len());
        assert!(
            bad.is_empty(),
            "{} of {checked} differ from Go, first:\n{}",
            bad.len(),
            bad.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
        );
    }
}
