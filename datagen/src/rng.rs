//! A small, portable, seedable random number generator and hash helpers.
//!
//! Why our own: determinism is part of the crate's contract ("same seed, same
//! bytes"), and `rand`'s `SmallRng` is documented as not portable across
//! versions or platforms. xoshiro256++ seeded through SplitMix64 is tiny,
//! fast and fixed forever. It implements [`rand::RngCore`] so the
//! distributions of `rand_distr` (Poisson, normal) can draw from it.

use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};

/// SplitMix64 finalizer: a good 64-bit mixing function.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hash of a sequence of integers; used to derive independent streams and
/// stable per-customer attributes.
pub(crate) fn hash(parts: &[u64]) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15_u64;
    for &p in parts {
        h = mix64(
            h ^ p
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .wrapping_add(0x632b_e59b_d9b4_e019),
        );
    }
    h
}

/// A uniform number in `[0, 1)` from a hash value.
pub(crate) fn unit_from_hash(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// xoshiro256++.
#[derive(Debug, Clone)]
pub(crate) struct SimRng {
    s: [u64; 4],
}

impl SimRng {
    /// A generator for the stream identified by `parts` (seed, tenant, ...).
    pub(crate) fn new(parts: &[u64]) -> Self {
        let mut x = hash(parts);
        let mut s = [0u64; 4];
        for v in &mut s {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            *v = mix64(x);
        }
        SimRng { s }
    }

    #[inline]
    pub(crate) fn u64(&mut self) -> u64 {
        let result = (self.s[0].wrapping_add(self.s[3]))
            .rotate_left(23)
            .wrapping_add(self.s[0]);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub(crate) fn f64(&mut self) -> f64 {
        unit_from_hash(self.u64())
    }

    /// Uniform integer in `[0, n)`; `n` must be positive.
    #[inline]
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((self.u64() as u128 * n as u128) >> 64) as u64
    }

    #[inline]
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Uniform in `[lo, hi)`.
    #[inline]
    pub(crate) fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Exponential with the given mean.
    #[inline]
    pub(crate) fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }

    #[inline]
    pub(crate) fn normal(&mut self) -> f64 {
        StandardNormal.sample(self)
    }

    /// Log-normal given its median and the sigma of the underlying normal.
    #[inline]
    pub(crate) fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// Index drawn from a cumulative weight table (last entry = total).
    #[inline]
    pub(crate) fn pick_cdf(&mut self, cdf: &[f64]) -> usize {
        pick_cdf(cdf, self.f64())
    }
}

/// Index whose cumulative weight first exceeds `u * total`.
pub(crate) fn pick_cdf(cdf: &[f64], u: f64) -> usize {
    let total = match cdf.last() {
        Some(t) => *t,
        None => return 0,
    };
    let x = u * total;
    let i = cdf.partition_point(|&c| c <= x);
    i.min(cdf.len() - 1)
}

/// Cumulative sums of `weights`.
pub(crate) fn cdf_of(weights: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    weights
        .into_iter()
        .map(|w| {
            acc += w.max(0.0);
            acc
        })
        .collect()
}

impl RngCore for SimRng {
    fn next_u32(&mut self) -> u32 {
        (self.u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.u64()
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let v = self.u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}
