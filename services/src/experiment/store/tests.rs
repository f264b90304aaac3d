use serde_json::json;

use super::*;

fn definition(key: &str) -> ExperimentDefinition {
    serde_json::from_value(json!({
        "key": key,
        "kind": "greeting",
        "variants": [
            {"key": "control", "weight": 1, "payload": {"text": "Hello"}},
            {"key": "friendly", "weight": 1, "payload": {"text": "Hi there!"}}
        ],
        "primary_metric": "conversion",
        "guardrail_metrics": ["csat", "transfer"]
    }))
    .unwrap_or_else(|e| panic!("fixture: {e}"))
}

fn invalid_field(result: Result<(), StoreError>) -> String {
    match result {
        Err(StoreError::Invalid { field, .. }) => field,
        other => panic!("expected an invalid definition, got {other:?}"),
    }
}

#[test]
fn a_plain_definition_is_valid_with_defaults() {
    let d = definition("greeting_v3");
    assert_eq!(d.validate().ok(), Some(()));
    assert_eq!(d.alpha, 0.05);
    assert_eq!(d.min_sample_per_variant, 500);
    assert_eq!(d.traffic_share, 1.0);
    assert_eq!(d.seed(), "greeting_v3");
    assert_eq!(d.control_key(), "control");
}

#[test]
fn weights_must_be_positive() {
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let mut d = definition("x");
        d.variants[1].weight = bad;
        assert_eq!(invalid_field(d.validate()), "variants[1].weight", "weight {bad}");
    }
}

#[test]
fn variant_keys_must_be_unique_and_plain() {
    let mut d = definition("x");
    d.variants[1].key = "control".into();
    assert_eq!(invalid_field(d.validate()), "variants[1].key");
    let mut d = definition("x");
    d.variants[0].key = "con'trol".into();
    assert_eq!(invalid_field(d.validate()), "variants[0].key");
    let mut d = definition("x");
    d.variants.truncate(1);
    assert_eq!(invalid_field(d.validate()), "variants");
}

#[test]
fn metrics_come_from_the_fixed_list() {
    let mut d = definition("x");
    d.primary_metric = "revenue".into();
    assert_eq!(invalid_field(d.validate()), "primary_metric");
    let mut d = definition("x");
    d.guardrail_metrics.push("bounce_rate".into());
    assert_eq!(invalid_field(d.validate()), "guardrail_metrics[2]");
    let mut d = definition("x");
    d.guardrail_metrics.push("conversion".into());
    assert_eq!(
        invalid_field(d.validate()),
        "guardrail_metrics[2]",
        "the primary is no guardrail"
    );
    for m in Metric::ALL {
        assert_eq!(Metric::parse(m.as_str()), Some(m));
    }
}

#[test]
fn other_fields_are_checked_by_name() {
    let cases: [(&str, fn(&mut ExperimentDefinition)); 7] = [
        ("key", |d| d.key = "has space".into()),
        ("kind", |d| d.kind = "Greeting!".into()),
        ("traffic_share", |d| d.traffic_share = 0.0),
        ("alpha", |d| d.alpha = 0.7),
        ("control", |d| d.control = Some("nope".into())),
        ("targeting.customer_tier[0]", |d| {
            d.targeting.customer_tier = vec!["gold".into()]
        }),
        ("min_sample_per_variant", |d| d.min_sample_per_variant = 1),
    ];
    for (field, break_it) in cases {
        let mut d = definition("x");
        break_it(&mut d);
        assert_eq!(invalid_field(d.validate()), field);
    }
}

fn layered(key: &str, layer: serde_json::Value) -> ExperimentDefinition {
    let mut d = definition(key);
    d.layer = Some(serde_json::from_value(layer).unwrap_or_else(|e| panic!("fixture: {e}")));
    d
}

#[test]
fn layer_shares_get_disjoint_bucket_ranges() {
    let mut r = Registry::default();
    let a = r
        .create(layered("a", json!({"key": "greet", "share": 0.3})), "k", "t")
        .cloned();
    let b = r
        .create(layered("b", json!({"key": "greet", "share": 0.5})), "k", "t")
        .cloned();
    let slot = |e: Result<Experiment, StoreError>| {
        let s = e
            .unwrap_or_else(|e| panic!("{e}"))
            .layer_slot
            .unwrap_or_else(|| panic!("no slot"));
        (s.first_bucket, s.end_bucket)
    };
    assert_eq!(slot(a), (0, 3000));
    assert_eq!(slot(b), (3000, 8000));
    // Only 2,000 buckets are left.
    match r.create(layered("c", json!({"key": "greet", "share": 0.3})), "k", "t") {
        Err(StoreError::Invalid { field, reason }) => {
            assert_eq!(field, "layer.share");
            assert!(reason.contains("[8000, 10000)"), "{reason}");
        }
        other => panic!("expected layer.share to be refused, got {other:?}"),
    }
    // Another layer is independent.
    assert!(
        r.create(layered("d", json!({"key": "persona", "share": 1.0})), "k", "t")
            .is_ok()
    );
}

#[test]
fn overlapping_explicit_buckets_are_refused_and_released_after_stop() {
    let mut r = Registry::default();
    assert!(
        r.create(layered("a", json!({"key": "greet", "buckets": [0, 5000]})), "k", "t")
            .is_ok()
    );
    match r.create(layered("b", json!({"key": "greet", "buckets": [4000, 6000]})), "k", "t") {
        Err(StoreError::Invalid { field, reason }) => {
            assert_eq!(field, "layer.buckets");
            assert!(reason.contains("\"a\""), "{reason}");
        }
        other => panic!("expected an overlap, got {other:?}"),
    }
    assert!(r.transition("a", Action::Start, "k", "t").is_ok());
    assert!(r.transition("a", Action::Stop, "k", "t").is_ok());
    assert!(
        r.create(layered("b", json!({"key": "greet", "buckets": [4000, 6000]})), "k", "t")
            .is_ok()
    );
}

#[test]
fn running_experiments_keep_their_variants_and_every_change_is_a_version() {
    let mut r = Registry::default();
    assert!(r.create(definition("g"), "k1", "t1").is_ok());
    let mut edited = definition("g");
    edited.variants[1].payload = json!({"text": "Hey!"});
    assert_eq!(r.edit("g", edited.clone(), "k1", "t2").map(|e| e.version).ok(), Some(2));
    assert_eq!(
        r.transition("g", Action::Start, "k2", "t3").map(|e| e.version).ok(),
        Some(3)
    );

    let mut changed = edited.clone();
    changed.variants[1].weight = 3.0;
    match r.edit("g", changed, "k1", "t4") {
        Err(StoreError::Conflict { field, .. }) => assert_eq!(field.as_deref(), Some("variants")),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let mut described = edited.clone();
    described.description = "friendlier greeting".into();
    assert_eq!(r.edit("g", described, "k1", "t5").map(|e| e.version).ok(), Some(4));
    assert!(matches!(
        r.transition("g", Action::Start, "k1", "t6"),
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        r.transition("g", Action::Archive, "k1", "t6"),
        Err(StoreError::Conflict { .. })
    ));
    assert!(r.transition("g", Action::Stop, "k1", "t7").is_ok());
    assert!(matches!(
        r.edit("g", edited, "k1", "t8"),
        Err(StoreError::Conflict { .. })
    ));
    assert!(r.transition("g", Action::Archive, "k1", "t9").is_ok());

    let e = r.get("g").unwrap_or_else(|| panic!("gone"));
    let actions: Vec<(u32, Action)> = e.history.iter().map(|h| (h.version, h.action)).collect();
    assert_eq!(
        actions,
        vec![
            (1, Action::Create),
            (2, Action::Edit),
            (3, Action::Start),
            (4, Action::Edit),
            (5, Action::Stop),
            (6, Action::Archive)
        ]
    );
    assert_eq!(
        e.history[0].definition.variants[1].payload,
        json!({"text": "Hi there!"})
    );
    assert_eq!(e.state, State::Archived);
}

#[test]
fn duplicate_keys_conflict() {
    let mut r = Registry::default();
    assert!(r.create(definition("g"), "k", "t").is_ok());
    assert!(matches!(
        r.create(definition("g"), "k", "t"),
        Err(StoreError::Conflict { .. })
    ));
}

#[test]
fn the_store_survives_a_reopen_and_a_failed_change_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = ExperimentStore::open(dir.path());
    assert!(
        store
            .update("acme", |r| r.create(definition("g"), "k", "t").map(|_| ()))
            .is_ok()
    );
    let mut bad = definition("h");
    bad.variants[0].weight = -1.0;
    assert!(store.update("acme", |r| r.create(bad, "k", "t").map(|_| ())).is_err());

    let reopened = ExperimentStore::open(dir.path());
    let keys = reopened
        .read("acme", |r| {
            r.experiments.iter().map(|e| e.key.clone()).collect::<Vec<_>>()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(keys, vec!["g".to_string()]);
    let others = reopened
        .read("other", |r| r.experiments.len())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(others, 0, "tenants do not share a registry");
    assert!(dir.path().join("experiments/acme.json").exists());
}

#[test]
fn targeting_needs_the_attribute_and_matches_language_prefixes() {
    let t = Targeting {
        channel: vec!["whatsapp".into()],
        language: vec!["en".into()],
        ..Targeting::default()
    };
    let unit = |channel: Option<&str>, language: Option<&str>| UnitAttributes {
        channel: channel.map(str::to_string),
        language: language.map(str::to_string),
        ..UnitAttributes::default()
    };
    assert_eq!(t.admits(&unit(Some("whatsapp"), Some("en-GB"))), Ok(()));
    assert_eq!(t.admits(&unit(Some("WhatsApp"), Some("EN"))), Ok(()));
    assert_eq!(t.admits(&unit(Some("line"), Some("en"))), Err("channel"));
    assert_eq!(t.admits(&unit(None, Some("en"))), Err("channel"));
    assert_eq!(t.admits(&unit(Some("whatsapp"), Some("eng"))), Err("language"));
    assert_eq!(Targeting::default().admits(&UnitAttributes::default()), Ok(()));
}

#[test]
fn merge_patch_follows_rfc_7396() {
    let mut v = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]});
    merge_patch(&mut v, &json!({"a": null, "b": {"c": 5}, "e": [2, 3]}));
    assert_eq!(v, json!({"b": {"c": 5, "d": 3}, "e": [2, 3]}));
}
