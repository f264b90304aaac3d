use super::*;

fn key() -> TenantKey {
    TenantKey::from_secret(&[7u8; 32])
}

#[test]
fn encryption_round_trips_and_hides_the_text() {
    let k = key();
    let sealed = k
        .encrypt("acme", "the courier was rude")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(sealed.starts_with(ENCRYPTED_PREFIX), "{sealed}");
    assert!(!sealed.contains("courier"));
    assert_eq!(k.decrypt("acme", &sealed).ok().as_deref(), Some("the courier was rude"));
    // A random nonce per value: the same text never looks the same twice.
    assert_ne!(k.encrypt("acme", "the courier was rude").ok(), Some(sealed.clone()));
    // Bound to the tenant and to the key.
    assert!(matches!(k.decrypt("other", &sealed), Err(PrivacyError::Decrypt)));
    let other_key = TenantKey::from_secret(&[8u8; 32]);
    assert!(matches!(other_key.decrypt("acme", &sealed), Err(PrivacyError::Decrypt)));
    // Clear text stored before encryption was turned on comes back as is.
    assert_eq!(k.decrypt("acme", "plain").ok().as_deref(), Some("plain"));
}

#[test]
fn pseudonyms_are_stable_keyed_and_distinct_from_tombstone_hashes() {
    let k = key();
    let p = k.pseudonym("cust-42");
    assert_eq!(p, k.pseudonym("cust-42"));
    assert_eq!(p.len(), PSEUDONYM_PREFIX.len() + 32);
    assert!(!p.contains("cust"));
    assert_ne!(p, k.pseudonym("cust-43"));
    assert_ne!(p, TenantKey::from_secret(&[8u8; 32]).pseudonym("cust-42"));
    assert_ne!(k.customer_hash("cust-42"), k.conversation_hash("cust-42"));
}

#[test]
fn policy_encrypts_or_drops_comment_and_message_text_and_pseudonymizes_ids() {
    let k = key();
    let event = Event {
        event_id: "e1".into(),
        tenant_id: "acme".into(),
        customer_id: Some("cust-42".into()),
        unit_id: Some("cust-42".into()),
        comment: Some("slow reply".into()),
        attrs: r#"{"text":"my address is 1 Main St","browser":"firefox"}"#.into(),
        ..Default::default()
    };
    let mut e = event.clone();
    let policy = PrivacyPolicy {
        free_text: FreeText::Encrypt,
        pseudonymize_customer_ids: true,
    };
    apply_policy(policy, &k, &mut e).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.customer_id, Some(k.pseudonym("cust-42")));
    assert_eq!(e.unit_id, e.customer_id);
    let comment = e.comment.clone().unwrap_or_default();
    assert_eq!(k.decrypt("acme", &comment).ok().as_deref(), Some("slow reply"));
    assert!(
        !e.attrs.contains("Main St") && e.attrs.contains("firefox"),
        "{}",
        e.attrs
    );

    let mut d = event.clone();
    let drop = PrivacyPolicy {
        free_text: FreeText::Drop,
        pseudonymize_customer_ids: false,
    };
    apply_policy(drop, &k, &mut d).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.comment, None);
    assert_eq!(d.attrs, r#"{"browser":"firefox"}"#);
    assert_eq!(d.customer_id.as_deref(), Some("cust-42"));
}

#[test]
fn key_file_is_private_and_reused_and_tombstones_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let p = Privacy::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let pseudonym = p.key("acme").map(|k| k.pseudonym("c1")).unwrap_or_default();
    let path = dir.path().join("privacy/keys/acme.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode()).unwrap_or(0);
        assert_eq!(mode & 0o777, 0o600);
    }
    let hash = p.key("acme").map(|k| hex(&k.customer_hash("c1"))).unwrap_or_default();
    p.add_tombstones(&[Tombstone {
        tenant: "acme".into(),
        kind: TombstoneKind::Customer,
        hash,
        erased_at_us: 1_000,
        receipt: "r1".into(),
    }])
    .unwrap_or_else(|e| panic!("{e}"));
    drop(p);

    let p = Privacy::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.key("acme").map(|k| k.pseudonym("c1")).ok(), Some(pseudonym));
    let ev = |line: usize, customer: &str, at: i64| {
        (
            line,
            Event {
                event_id: format!("e{line}"),
                tenant_id: "acme".into(),
                customer_id: Some(customer.into()),
                occurred_at_us: at,
                ..Default::default()
            },
        )
    };
    let (kept, erased) = p
        .drop_erased(vec![ev(1, "c1", 500), ev(2, "c2", 500), ev(3, "c1", 2_000)])
        .unwrap_or_else(|e| panic!("{e}"));
    // Old events of the erased customer are dropped; a later contact is new data.
    assert_eq!(erased, vec![1]);
    assert_eq!(kept.iter().map(|(l, _)| *l).collect::<Vec<_>>(), vec![2, 3]);
    let raw = std::fs::read_to_string(dir.path().join("privacy/tombstones.jsonl")).unwrap_or_default();
    // The id as a JSON string (a hex hash may end in `c1` by chance).
    assert!(!raw.contains("\"c1\""), "{raw}");
}

/// An event with `attrs` as the contract stores them (sorted JSON text).
fn with_attrs(attrs: serde_json::Value) -> Event {
    Event {
        event_id: "e1".into(),
        tenant_id: "acme".into(),
        attrs: attrs.to_string(),
        ..Default::default()
    }
}

#[test]
fn free_text_is_found_at_any_depth_under_any_text_key() {
    let k = key();
    let nested = with_attrs(serde_json::json!({
        "message": {"text": "call me on 0151 1234567", "lang": "en", "parts": ["my iban is DE89"], "n": 2},
        "note": "customer is pregnant",
        "customer_note": "lives at 1 Main St",
        "emailBody": "Dear Sir",
        "Description": "card ending 4242",
        "thread": [{"author": "bot", "content": "your order number is 77"}],
        "payload": "{\"reply\":{\"body\":\"the password is hunter2\"},\"channel\":\"sms\"}",
        "transcript": "spoken words",
        "raw": "{\"\\u0074ext\":\"escaped secret\"}",
        "message_id": "m-1",
        "body_length": 120,
        "browser": "firefox",
    }));
    let secrets = [
        "0151",
        "DE89",
        "pregnant",
        "Main St",
        "Dear Sir",
        "4242",
        "order number",
        "hunter2",
        "spoken",
        "escaped",
    ];

    let drop = PrivacyPolicy {
        free_text: FreeText::Drop,
        pseudonymize_customer_ids: false,
    };
    let mut d = nested.clone();
    apply_policy(drop, &k, &mut d).unwrap_or_else(|e| panic!("{e}"));
    for s in secrets {
        assert!(!d.attrs.contains(s), "{s:?} dropped: {}", d.attrs);
    }
    let kept: serde_json::Value = serde_json::from_str(&d.attrs).unwrap_or_default();
    assert_eq!(kept["browser"], "firefox");
    assert_eq!(kept["message_id"], "m-1", "an id of a message is not its text");
    assert_eq!(kept["body_length"], 120);
    assert_eq!(kept["message"]["n"], 2, "numbers are never text");
    assert_eq!(
        kept["thread"][0]["author"], "bot",
        "a thread is not text, only its content"
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(kept["payload"].as_str().unwrap_or_default()).ok(),
        Some(serde_json::json!({"reply": {}, "channel": "sms"})),
        "JSON text in a string is searched too"
    );

    let encrypt = PrivacyPolicy {
        free_text: FreeText::Encrypt,
        pseudonymize_customer_ids: false,
    };
    let mut e = nested.clone();
    apply_policy(encrypt, &k, &mut e).unwrap_or_else(|e| panic!("{e}"));
    for s in secrets {
        assert!(!e.attrs.contains(s), "{s:?} encrypted: {}", e.attrs);
    }
    // Opening every encrypted value gives back exactly what was sent.
    let mut opened = e.attrs.clone();
    edit_text_attrs(&mut opened, |t| k.decrypt("acme", t).map(Some)).unwrap_or_else(|e| panic!("{e}"));
    let as_value = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap_or_default();
    let mut opened = as_value(&opened);
    let mut sent = as_value(&nested.attrs);
    // The JSON text inside `payload` was re-serialized: compare it parsed.
    for v in [&mut opened, &mut sent] {
        for field in ["payload", "raw"] {
            let inner = as_value(v[field].as_str().unwrap_or_default());
            v[field] = inner;
        }
    }
    assert_eq!(opened, sent);
}

#[test]
fn keys_name_free_text_by_their_words() {
    for key in [
        "text",
        "Body",
        "customer_note",
        "messageText",
        "email-subject",
        "notes",
        "html",
    ] {
        assert!(names_free_text(key), "{key}");
    }
    for key in [
        "browser",
        "message_id",
        "textLength",
        "note_count",
        "context",
        "bodyguard",
        "",
    ] {
        assert!(!names_free_text(key), "{key}");
    }
}
