use super::*;
use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Chi-square goodness-of-fit p-value of `observed` against `expected` counts.
fn chi_square_p(observed: &[u64], expected: &[f64]) -> f64 {
    let statistic: f64 = observed
        .iter()
        .zip(expected)
        .map(|(&o, &e)| (o as f64 - e).powi(2) / e)
        .sum();
    let dist = ChiSquared::new((observed.len() - 1) as f64).unwrap();
    1.0 - dist.cdf(statistic)
}

#[test]
fn same_unit_always_gets_same_variant() {
    let weights = [1.0, 1.0, 2.0];
    for i in 0..1000 {
        let unit = format!("customer-{i}");
        let first = assign_variant("greeting-2025-06", &unit, &weights);
        let second = assign_variant("greeting-2025-06", &unit, &weights);
        assert_eq!(first, second);
        assert!(first < weights.len());
    }
}

/// Pinned values, computed independently with Python's `xxhash` package
/// (`xxh3_64_intdigest(b"exp-1\x1fcustomer-42", seed=s)`): changing them means
/// a new algorithm version.
#[test]
fn hash_matches_reference_implementation() {
    assert_eq!(unit_hash("exp-1", "customer-42", Stream::Variant), 15391563829564794925);
    assert_eq!(unit_hash("exp-1", "customer-42", Stream::Traffic), 1632605340185569054);
}

#[test]
fn long_keys_hash_like_short_ones() {
    // The streaming path must give the one-shot digest for the same bytes.
    let seed = "s".repeat(300);
    let mut key = seed.clone().into_bytes();
    key.push(KEY_SEPARATOR);
    key.extend_from_slice(b"unit");
    assert_eq!(
        unit_hash(&seed, "unit", Stream::Traffic),
        xxh3_64_with_seed(&key, Stream::Traffic.xxh3_seed())
    );
}

#[test]
fn weights_hold_within_sampling_error_over_100k_units() {
    let weights = [0.5, 0.3, 0.2];
    let mut counts = [0u64; 3];
    let units = 100_000;
    for i in 0..units {
        counts[assign_variant("persona-v3", &format!("cust_{i}"), &weights)] += 1;
    }
    let expected: Vec<f64> = weights.iter().map(|w| w * units as f64).collect();
    let p = chi_square_p(&counts, &expected);
    assert!(p > 0.001, "counts {counts:?} deviate from weights, p = {p}");
}

#[test]
fn unnormalised_and_zero_weights() {
    // Weights 3:1 behave like 0.75/0.25; a zero weight is never chosen.
    let mut counts = [0u64; 3];
    for i in 0..20_000 {
        counts[assign_variant("x", &i.to_string(), &[3.0, 0.0, 1.0])] += 1;
    }
    assert_eq!(counts[1], 0);
    let p = chi_square_p(&[counts[0], counts[2]], &[15_000.0, 5_000.0]);
    assert!(p > 0.001, "{counts:?}");
    assert_eq!(assign_variant("x", "y", &[]), 0);
    assert_eq!(assign_variant("x", "y", &[f64::NAN, -1.0]), 0);
}

#[test]
fn variant_boundaries() {
    assert_eq!(variant_at(0.0, &[1.0, 1.0]), 0);
    assert_eq!(variant_at(0.4999, &[1.0, 1.0]), 0);
    assert_eq!(variant_at(0.5, &[1.0, 1.0]), 1);
    assert_eq!(variant_at(0.0, &[0.0, 1.0]), 1);
    assert_eq!(hash_to_unit_interval(u64::MAX), 1.0 - 2f64.powi(-53));
    assert_eq!(hash_to_unit_interval(0), 0.0);
}

#[test]
fn traffic_share_is_respected_and_independent_of_variant() {
    let seed = "quick-replies-7";
    let weights = [1.0, 1.0];
    let mut admitted = 0u64;
    let mut by_variant = [0u64; 2];
    let units = 100_000;
    for i in 0..units {
        let unit = format!("c{i}");
        if in_traffic(seed, &unit, 0.1) {
            admitted += 1;
            by_variant[assign_variant(seed, &unit, &weights)] += 1;
        }
    }
    let p_share = chi_square_p(&[admitted, units - admitted], &[10_000.0, 90_000.0]);
    assert!(p_share > 0.001, "admitted {admitted}");
    // If the gate reused the variant stream, admitted units would all be variant 0.
    let half = admitted as f64 / 2.0;
    let p_split = chi_square_p(&by_variant, &[half, half]);
    assert!(p_split > 0.001, "{by_variant:?}");
    assert!(!in_traffic(seed, "c1", 0.0));
    assert!(in_traffic(seed, "c1", 1.0));
    assert!(!in_traffic(seed, "c1", f64::NAN));
}

#[test]
fn experiments_in_different_layers_are_independent() {
    // 2x2 contingency table of variants in two experiments with unrelated seeds.
    let mut table = [[0u64; 2]; 2];
    let units = 100_000;
    for i in 0..units {
        let unit = format!("customer:{i}");
        let a = assign_variant("layer-greetings/exp-a", &unit, &[1.0, 1.0]);
        let b = assign_variant("layer-personas/exp-b", &unit, &[1.0, 1.0]);
        table[a][b] += 1;
    }
    let rows = [table[0][0] + table[0][1], table[1][0] + table[1][1]];
    let cols = [table[0][0] + table[1][0], table[0][1] + table[1][1]];
    let mut statistic = 0.0;
    for r in 0..2 {
        for c in 0..2 {
            let expected = rows[r] as f64 * cols[c] as f64 / units as f64;
            statistic += (table[r][c] as f64 - expected).powi(2) / expected;
        }
    }
    let p = 1.0 - ChiSquared::new(1.0).unwrap().cdf(statistic);
    assert!(p > 0.001, "{table:?}, p = {p}");
}

#[test]
fn a_unit_is_in_at_most_one_experiment_of_a_layer() {
    let slot = |key: &str, first, end| LayerSlot {
        experiment_key: key.to_string(),
        first_bucket: first,
        end_bucket: end,
    };
    let layer = Layer::new("greeting-layer", vec![slot("b", 5_000, 8_000), slot("a", 0, 5_000)]).unwrap();
    let mut counts = std::collections::HashMap::new();
    for i in 0..100_000 {
        let unit = format!("u{i}");
        let bucket = layer_bucket("greeting-layer", &unit);
        let owner = layer.experiment_for(&unit);
        // Exactly the owner of the bucket, nobody else.
        let owners: Vec<&str> = layer
            .slots()
            .iter()
            .filter(|s| (s.first_bucket..s.end_bucket).contains(&bucket))
            .map(|s| s.experiment_key.as_str())
            .collect();
        assert_eq!(owner.into_iter().collect::<Vec<_>>(), owners);
        *counts.entry(owner).or_insert(0u64) += 1;
    }
    let observed = [counts[&Some("a")], counts[&Some("b")], counts[&None]];
    let p = chi_square_p(&observed, &[50_000.0, 30_000.0, 20_000.0]);
    assert!(p > 0.001, "{observed:?}");
}

#[test]
fn overlapping_or_invalid_slots_are_rejected() {
    let slot = |key: &str, first, end| LayerSlot {
        experiment_key: key.to_string(),
        first_bucket: first,
        end_bucket: end,
    };
    assert_eq!(
        Layer::new("l", vec![slot("a", 0, 10), slot("b", 9, 20)]),
        Err(AssignmentError::LayerOverlap {
            first: "a".into(),
            second: "b".into()
        })
    );
    assert!(matches!(
        Layer::new("l", vec![slot("a", 10, 10)]),
        Err(AssignmentError::InvalidSlot { .. })
    ));
    assert!(matches!(
        Layer::new("l", vec![slot("a", 0, LAYER_BUCKETS + 1)]),
        Err(AssignmentError::InvalidSlot { .. })
    ));
    assert!(Layer::new("l", vec![slot("a", 0, 10), slot("b", 10, 20)]).is_ok());
}

#[test]
fn variant_split_validates_and_agrees_with_free_function() {
    assert_eq!(VariantSplit::new(vec![]), Err(AssignmentError::NoVariants));
    assert!(matches!(
        VariantSplit::new(vec![1.0, 0.0]),
        Err(AssignmentError::InvalidWeight { index: 1, .. })
    ));
    let split = VariantSplit::new(vec![2.0, 1.0]).unwrap();
    for i in 0..100 {
        let unit = i.to_string();
        assert_eq!(split.variant("s", &unit), assign_variant("s", &unit, &[2.0, 1.0]));
    }
}
