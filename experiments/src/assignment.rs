//! Deterministic, stateless assignment of units to variants: **`cxlake-assign-v1`**.
//!
//! # The algorithm, exactly (so other languages can reimplement it)
//!
//! 1. Build the key bytes: the UTF-8 bytes of the experiment `seed`, one
//!    separator byte `0x1F` (ASCII "unit separator"), then the UTF-8 bytes of
//!    `unit_id`. No normalisation, no trimming, no case folding.
//! 2. Hash the key with **XXH3-64** using the integer *stream seed* of the
//!    decision being made (the standard `XXH3_64bits_withSeed`; seed `0` is
//!    identical to plain `XXH3_64bits`):
//!    - [`Stream::Variant`] = `0`: which variant the unit sees;
//!    - [`Stream::Traffic`] = `1`: whether the unit is in the experiment at all;
//!    - [`Stream::Layer`]   = `2`: the unit's bucket in a layer (the key is
//!      built from the *layer* seed instead of the experiment seed).
//!
//!    Distinct stream seeds make the traffic gate independent of the variant
//!    split: without it, a 10 % traffic share would only admit units whose
//!    variant hash is small, i.e. mostly the first variant.
//! 3. Map the hash `h` to a position `u` in `[0, 1)` using its top 53 bits:
//!    `u = (h >> 11) * 2^-53` (exact in an IEEE-754 double).
//! 4. Decisions from `u`:
//!    - variant: with weights `w_0..w_{k-1}` (non-finite or negative weights
//!      count as 0), `total = w_0 + … + w_{k-1}` summed left to right,
//!      cumulative sums `c_i` summed left to right, `x = u * total`; the
//!      variant is the first `i` with `x < c_i` (if rounding leaves none, the
//!      last variant with a positive weight);
//!    - traffic: the unit is in the experiment iff `u < traffic_share`;
//!    - layer bucket: `floor(u * 10000)`, an integer in `0..10000`
//!      ([`LAYER_BUCKETS`]); each experiment of the layer owns a half-open
//!      bucket range, so a unit is in at most one experiment of a layer.
//!
//! Python reference (with the `xxhash` package):
//!
//! ```text
//! def position(seed, unit_id, stream):
//!     h = xxhash.xxh3_64_intdigest(seed.encode() + b"\x1f" + unit_id.encode(), seed=stream)
//!     return (h >> 11) * 2.0**-53
//! ```
//!
//! Any change to these steps is a new version (`cxlake-assign-v2`), because it
//! would silently move customers between variants of running experiments.
//!
//! # Speed
//!
//! Keys up to [`STACK_KEY_BYTES`] bytes are assembled in a stack buffer and
//! hashed in one shot; longer keys go through the streaming hasher, which
//! yields the same digest. No call allocates.

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{Xxh3, xxh3_64_with_seed};

/// The name of the algorithm implemented here; store it next to results.
pub const ALGORITHM_VERSION: &str = "cxlake-assign-v1";

/// Separator byte between seed and unit id (ASCII unit separator).
pub const KEY_SEPARATOR: u8 = 0x1F;

/// Number of buckets a layer is divided into.
pub const LAYER_BUCKETS: u32 = 10_000;

/// Keys (seed + separator + unit id) up to this length are hashed from a stack buffer.
pub const STACK_KEY_BYTES: usize = 256;

/// Independent hash streams; the value is the XXH3 seed of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Variant split, XXH3 seed 0.
    Variant,
    /// Traffic-share gate, XXH3 seed 1.
    Traffic,
    /// Layer bucket (keyed by the layer seed), XXH3 seed 2.
    Layer,
}

impl Stream {
    /// The XXH3 seed of this stream.
    pub const fn xxh3_seed(self) -> u64 {
        match self {
            Stream::Variant => 0,
            Stream::Traffic => 1,
            Stream::Layer => 2,
        }
    }
}

/// The raw 64-bit hash of `seed` 0x1F `unit_id` in the given stream (step 2).
#[inline]
pub fn unit_hash(seed: &str, unit_id: &str, stream: Stream) -> u64 {
    let seed_bytes = seed.as_bytes();
    let unit_bytes = unit_id.as_bytes();
    let len = seed_bytes.len() + 1 + unit_bytes.len();
    if len <= STACK_KEY_BYTES {
        let mut key = [0u8; STACK_KEY_BYTES];
        key[..seed_bytes.len()].copy_from_slice(seed_bytes);
        key[seed_bytes.len()] = KEY_SEPARATOR;
        key[seed_bytes.len() + 1..len].copy_from_slice(unit_bytes);
        xxh3_64_with_seed(&key[..len], stream.xxh3_seed())
    } else {
        // Rare (very long ids): the streaming hasher gives the same digest as
        // the one-shot function without concatenating on the heap.
        let mut hasher = Xxh3::with_seed(stream.xxh3_seed());
        hasher.update(seed_bytes);
        hasher.update(&[KEY_SEPARATOR]);
        hasher.update(unit_bytes);
        hasher.digest()
    }
}

/// The unit's position in `[0, 1)` in the given stream (steps 1–3).
#[inline]
pub fn unit_position(seed: &str, unit_id: &str, stream: Stream) -> f64 {
    hash_to_unit_interval(unit_hash(seed, unit_id, stream))
}

/// Top 53 bits of the hash scaled to `[0, 1)`; exact in f64.
#[inline]
pub fn hash_to_unit_interval(hash: u64) -> f64 {
    const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
    (hash >> 11) as f64 * SCALE
}

/// Index of the variant `unit_id` sees in the experiment with `seed`.
///
/// `weights` need not sum to 1; non-finite or negative weights count as 0.
/// Callers validate weights when the experiment is defined (see
/// [`VariantSplit::new`]); this function never panics and, for an empty or
/// all-zero weight list, answers 0.
#[inline]
pub fn assign_variant(seed: &str, unit_id: &str, weights: &[f64]) -> usize {
    let u = unit_position(seed, unit_id, Stream::Variant);
    variant_at(u, weights)
}

/// Step 4 for variants: pick the variant whose cumulative-weight interval holds `u`.
#[inline]
fn variant_at(u: f64, weights: &[f64]) -> usize {
    let clean = |w: f64| if w.is_finite() && w > 0.0 { w } else { 0.0 };
    let total: f64 = weights.iter().fold(0.0, |acc, &w| acc + clean(w));
    if total <= 0.0 || !total.is_finite() {
        return 0;
    }
    let x = u * total;
    let mut cumulative = 0.0;
    let mut last_positive = 0;
    for (index, &w) in weights.iter().enumerate() {
        let w = clean(w);
        if w > 0.0 {
            last_positive = index;
        }
        cumulative += w;
        if x < cumulative {
            return index;
        }
    }
    last_positive
}

/// Whether `unit_id` is in the experiment at all, for a traffic share in `[0, 1]`.
///
/// Uses [`Stream::Traffic`], independent of the variant split, so every
/// variant keeps its weight among admitted units. A share ≤ 0 (or NaN) admits
/// nobody, a share ≥ 1 admits everybody.
#[inline]
pub fn in_traffic(seed: &str, unit_id: &str, traffic_share: f64) -> bool {
    // `u < share` is false for NaN, which is the safe answer.
    unit_position(seed, unit_id, Stream::Traffic) < traffic_share
}

/// The unit's bucket in `0..LAYER_BUCKETS` for the layer with `layer_seed`.
#[inline]
pub fn layer_bucket(layer_seed: &str, unit_id: &str) -> u32 {
    let u = unit_position(layer_seed, unit_id, Stream::Layer);
    // u < 1 so the product is < LAYER_BUCKETS; `min` guards against rounding.
    ((u * f64::from(LAYER_BUCKETS)) as u32).min(LAYER_BUCKETS - 1)
}

/// Errors in assignment definitions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AssignmentError {
    /// No variants were given.
    #[error("weights: at least one variant is required")]
    NoVariants,
    /// A weight is not a positive finite number.
    #[error("weights[{index}]: weight must be a positive finite number, got {weight}")]
    InvalidWeight {
        /// Position of the offending weight.
        index: usize,
        /// The offending value.
        weight: f64,
    },
    /// A layer slot is empty or exceeds the bucket count.
    #[error(
        "layer slot '{experiment_key}': bucket range {first_bucket}..{end_bucket} must be non-empty and within 0..{LAYER_BUCKETS}"
    )]
    InvalidSlot {
        /// Experiment owning the slot.
        experiment_key: String,
        /// First bucket (inclusive).
        first_bucket: u32,
        /// End bucket (exclusive).
        end_bucket: u32,
    },
    /// Two experiments of a layer claim the same buckets.
    #[error("layer slots '{first}' and '{second}' overlap")]
    LayerOverlap {
        /// One experiment.
        first: String,
        /// The other experiment.
        second: String,
    },
}

/// Validated variant weights: positive and finite. Use it where the
/// definition is accepted; it then assigns exactly like [`assign_variant`].
#[derive(Debug, Clone, PartialEq)]
pub struct VariantSplit {
    weights: Vec<f64>,
}

impl VariantSplit {
    /// Validates the weights (non-empty, each positive and finite).
    pub fn new(weights: Vec<f64>) -> Result<Self, AssignmentError> {
        if weights.is_empty() {
            return Err(AssignmentError::NoVariants);
        }
        if let Some((index, &weight)) = weights.iter().enumerate().find(|(_, w)| !(w.is_finite() && **w > 0.0)) {
            return Err(AssignmentError::InvalidWeight { index, weight });
        }
        Ok(Self { weights })
    }

    /// The validated weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The variant for `unit_id`; same answer as [`assign_variant`].
    pub fn variant(&self, seed: &str, unit_id: &str) -> usize {
        assign_variant(seed, unit_id, &self.weights)
    }
}

/// One experiment's share of a layer: buckets `first_bucket..end_bucket`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSlot {
    /// Key of the experiment that owns these buckets.
    pub experiment_key: String,
    /// First bucket owned (inclusive).
    pub first_bucket: u32,
    /// End of the range (exclusive).
    pub end_bucket: u32,
}

/// A layer: experiments that must not share customers. Built only through
/// [`Layer::new`], which rejects overlapping slots, so exclusivity is a
/// property of the type.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    seed: String,
    /// Sorted by `first_bucket`, non-overlapping.
    slots: Vec<LayerSlot>,
}

impl Layer {
    /// Validates slots (non-empty, in range, pairwise disjoint).
    pub fn new(seed: impl Into<String>, mut slots: Vec<LayerSlot>) -> Result<Self, AssignmentError> {
        for slot in &slots {
            if slot.first_bucket >= slot.end_bucket || slot.end_bucket > LAYER_BUCKETS {
                return Err(AssignmentError::InvalidSlot {
                    experiment_key: slot.experiment_key.clone(),
                    first_bucket: slot.first_bucket,
                    end_bucket: slot.end_bucket,
                });
            }
        }
        slots.sort_by_key(|slot| slot.first_bucket);
        for pair in slots.windows(2) {
            if pair[1].first_bucket < pair[0].end_bucket {
                return Err(AssignmentError::LayerOverlap {
                    first: pair[0].experiment_key.clone(),
                    second: pair[1].experiment_key.clone(),
                });
            }
        }
        Ok(Self {
            seed: seed.into(),
            slots,
        })
    }

    /// The layer seed.
    pub fn seed(&self) -> &str {
        &self.seed
    }

    /// The slots, sorted by first bucket.
    pub fn slots(&self) -> &[LayerSlot] {
        &self.slots
    }

    /// The experiment of this layer that `unit_id` may enter, if any.
    pub fn experiment_for(&self, unit_id: &str) -> Option<&str> {
        let bucket = layer_bucket(&self.seed, unit_id);
        // Slots are sorted and disjoint: the candidate is the last slot
        // starting at or before the bucket.
        let index = self.slots.partition_point(|slot| slot.first_bucket <= bucket);
        let slot = self.slots.get(index.checked_sub(1)?)?;
        (bucket < slot.end_bucket).then_some(slot.experiment_key.as_str())
    }
}

#[cfg(test)]
mod tests;
