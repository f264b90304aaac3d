use super::*;

fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).unwrap_or_else(|| panic!("{s} is a valid tenant id"))
}

#[test]
fn a_tenant_without_a_file_has_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let s = load(dir.path(), &tenant("acme")).unwrap();
    assert_eq!(s, TenantSettings::default());
    assert_eq!(s.time_zone, "UTC");
    assert_eq!(s.sla_target_s, 120.0);
    assert_eq!(s.attribution_window_days, 7);
    assert_eq!(s.sla_target_us(), 120_000_000);
}

#[test]
fn stored_settings_are_read_back_and_leave_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = TenantSettings {
        time_zone: "Europe/Berlin".into(),
        sla_target_s: 60.5,
        attribution_window_days: 3,
        hourly_rates: vec![
            HourlyRate {
                team: Some("t1".into()),
                rate: 20.0,
                currency: "EUR".into(),
            },
            HourlyRate {
                team: None,
                rate: 10.0,
                currency: "EUR".into(),
            },
        ],
        free_text: ingest::privacy::FreeText::Encrypt,
        pseudonymize_customer_ids: true,
        chatwoot_webhook_secrets: [("1".to_string(), "s3cret".to_string())].into(),
    };
    s.validate().unwrap();
    store(dir.path(), &tenant("acme"), &s).unwrap();
    assert_eq!(load(dir.path(), &tenant("acme")).unwrap(), s);
    // another tenant is untouched
    assert_eq!(load(dir.path(), &tenant("beta")).unwrap(), TenantSettings::default());
    let names: Vec<String> = std::fs::read_dir(dir.path().join("settings"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["acme.json".to_string()]);
}

#[test]
fn absent_fields_take_defaults_and_unknown_fields_are_refused() {
    let s: TenantSettings = serde_json::from_str(r#"{"time_zone": "Asia/Shanghai"}"#).unwrap();
    assert_eq!(s.sla_target_s, 120.0);
    assert_eq!(s.time_zone, "Asia/Shanghai");
    assert!(serde_json::from_str::<TenantSettings>(r#"{"timezone": "Asia/Shanghai"}"#).is_err());
}

#[test]
fn validation_names_the_field() {
    let field = |json: &str| {
        let s: TenantSettings = serde_json::from_str(json).unwrap();
        s.validate().err().map(|e| e.field)
    };
    assert_eq!(field(r#"{"time_zone": "Mars/Olympus"}"#).as_deref(), Some("time_zone"));
    assert_eq!(field(r#"{"time_zone": "+08:00"}"#).as_deref(), Some("time_zone"));
    assert_eq!(field(r#"{"sla_target_s": 0}"#).as_deref(), Some("sla_target_s"));
    assert_eq!(
        field(r#"{"attribution_window_days": 0}"#).as_deref(),
        Some("attribution_window_days")
    );
    assert_eq!(
        field(r#"{"hourly_rates": [{"rate": 1, "currency": "eur"}]}"#).as_deref(),
        Some("hourly_rates[0].currency")
    );
    assert_eq!(
        field(r#"{"hourly_rates": [{"rate": -1, "currency": "EUR"}]}"#).as_deref(),
        Some("hourly_rates[0].rate")
    );
    assert_eq!(
        field(r#"{"hourly_rates": [{"team": "a", "rate": 1, "currency": "EUR"}, {"team": "a", "rate": 2, "currency": "EUR"}]}"#)
            .as_deref(),
        Some("hourly_rates[1].team")
    );
    assert_eq!(
        field(r#"{"chatwoot_webhook_secrets": {"acme": "x"}}"#).as_deref(),
        Some("chatwoot_webhook_secrets.acme")
    );
    assert_eq!(
        field(r#"{"chatwoot_webhook_secrets": {"1": ""}}"#).as_deref(),
        Some("chatwoot_webhook_secrets.1")
    );
    assert_eq!(field(r#"{"time_zone": "America/New_York", "sla_target_s": 30}"#), None);
}

#[test]
fn the_audit_copy_of_settings_holds_no_webhook_secret() {
    let s: TenantSettings =
        serde_json::from_str(r#"{"chatwoot_webhook_secrets": {"7": "very-secret-value"}}"#).unwrap();
    let audited = s.for_audit().to_string();
    assert!(!audited.contains("very-secret-value"), "{audited}");
    assert!(audited.contains("\"7\":\"sha256:"), "{audited}");
}
