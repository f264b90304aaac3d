use super::*;

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

/// Published Erlang B table (grade of service 1 %): servers → offered load in
/// erlangs, to the table's two decimals. E.g. Wikipedia "Erlang (unit)" /
/// any teletraffic handbook (ITU-D Teletraffic Engineering Handbook, table).
#[test]
fn erlang_b_matches_published_table_at_one_percent() {
    for (servers, table_load) in [(10u32, 4.46), (20, 12.03), (50, 37.90), (100, 84.06)] {
        // Invert B(servers, a) = 0.01 by bisection; B rises with the load.
        let (mut lo, mut hi) = (0.0, f64::from(servers));
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if erlang_b(servers, mid).unwrap() < 0.01 {
                lo = mid
            } else {
                hi = mid
            }
        }
        assert!(
            (lo - table_load).abs() < 0.005 + 1e-9,
            "N={servers}: {lo} vs {table_load}"
        );
    }
    assert!((erlang_b(10, 10.0).unwrap() - 0.2146).abs() < 5e-5);
}

#[test]
fn erlang_c_textbook_value_and_unstable_queue() {
    // C(11 servers, 10 erlangs) = 0.6821 in every Erlang C table.
    assert!((erlang_c(11, 10.0).unwrap() - 0.6821).abs() < 5e-5);
    assert_eq!(erlang_c(10, 10.0).unwrap(), 1.0);
    let m = erlang_c_metrics(9, 10.0, 180.0, 20.0).unwrap();
    assert_eq!(m.service_level, 0.0);
    assert!(m.asa_s.is_infinite());
}

#[test]
fn erlang_b_is_stable_for_thousands_of_servers() {
    let b = erlang_b(5000, 5000.0).unwrap();
    // Asymptotically B(n, n) ≈ 1/√(πn/2) (Jagerman); 5000 servers: ≈ 0.0113.
    assert!(
        b.is_finite() && (b - (std::f64::consts::PI * 2500.0).sqrt().recip()).abs() < 5e-4,
        "{b}"
    );
    let c = erlang_c(5100, 5000.0).unwrap();
    assert!(c > 0.0 && c < 1.0);
    // Heavily over-staffed: the recurrence underflows gracefully to 0.
    assert_eq!(erlang_c(20_000, 10.0).unwrap(), 0.0);
}

#[test]
fn erlang_a_tends_to_erlang_c_as_patience_grows() {
    let lam = 100.0 / 1800.0;
    let c = erlang_c_metrics(14, lam * 180.0, 180.0, 20.0).unwrap();
    let a = erlang_a_metrics(14, lam, 180.0, 1e9, 20.0).unwrap();
    assert!(rel(a.p_wait, c.p_wait) < 1e-5, "{a:?} {c:?}");
    assert!(rel(a.service_level, c.service_level) < 1e-5);
    assert!(rel(a.asa_s, c.asa_s) < 1e-4);
    assert!(a.p_abandon.unwrap() < 1e-6);
}

#[test]
fn erlang_a_with_patience_equal_to_handle_time_is_m_m_infinity() {
    // θ = μ makes every state's death rate kμ: the number in system is
    // Poisson(a), so P(wait) = P(Poisson(a) ≥ n) and P(abandon) follows.
    let (n, a) = (12u32, 10.0_f64);
    let m = erlang_a_metrics(n, a / 300.0, 300.0, 300.0, 30.0).unwrap();
    let mut pmf = (-a).exp();
    let mut below = 0.0;
    let mut e_queue = 0.0;
    for k in 0..400u32 {
        if k < n {
            below += pmf;
        } else {
            e_queue += f64::from(k - n) * pmf;
        }
        pmf *= a / f64::from(k + 1);
    }
    assert!(rel(m.p_wait, 1.0 - below) < 1e-10, "{} vs {}", m.p_wait, 1.0 - below);
    // P(abandon) = θ E[queue] / λ = E[queue] / a when θ = μ.
    assert!(rel(m.p_abandon.unwrap(), e_queue / a) < 1e-10);
}

#[test]
fn erlang_a_abandonment_matches_closed_form() {
    // P(Ab | wait) = 1/(ρA) + 1 − 1/ρ (Mandelbaum & Zeltyn), with A summed here.
    let (n, lam, aht, pat) = (90u32, 600.0 / 1800.0, 300.0, 180.0);
    let m = erlang_a_metrics(n, lam, aht, pat, 30.0).unwrap();
    let x = f64::from(n) * pat / aht;
    let y = lam * pat;
    let (mut a_sum, mut t) = (1.0, 1.0);
    for j in 1..10_000 {
        t *= y / (x + f64::from(j));
        a_sum += t;
    }
    let rho = lam * aht / f64::from(n);
    let closed = 1.0 / (rho * a_sum) + 1.0 - 1.0 / rho;
    assert!(rel(m.p_abandon.unwrap() / m.p_wait, closed) < 1e-9);
}

#[test]
fn erlang_a_handles_thousands_of_agents_and_overload() {
    let m = erlang_a_metrics(5000, 30_000.0 / 1800.0, 300.0, 240.0, 20.0).unwrap();
    assert!(m.service_level.is_finite() && m.p_wait > 0.0 && m.p_wait < 1.0);
    // Twice the load of the servers: about half must abandon.
    let o = erlang_a_metrics(2500, 30_000.0 / 1800.0, 300.0, 240.0, 20.0).unwrap();
    assert!((o.p_abandon.unwrap() - 0.5).abs() < 0.02, "{o:?}");
    assert!(o.p_wait > 0.999);
}

#[test]
fn required_servers_is_the_first_count_meeting_the_target() {
    let w = Workload::new(100.0, 1800.0, 180.0, None).unwrap();
    let t = Target {
        target_s: 20.0,
        service_level: Some(0.8),
        max_occupancy: None,
    };
    let m = required_servers(&w, &t).unwrap();
    assert_eq!(m.servers, 14);
    assert!(metrics(13, &w, 20.0).unwrap().service_level < 0.8);
    // Occupancy cap binding: ⌈10 / 0.7⌉ = 15.
    let capped = required_servers(
        &w,
        &Target {
            max_occupancy: Some(0.7),
            ..t
        },
    )
    .unwrap();
    assert_eq!(capped.servers, 15);
    // Erlang A: monotone search, and below-load staffing is possible.
    let wa = Workload::new(100.0, 1800.0, 180.0, Some(120.0)).unwrap();
    let ma = required_servers(&wa, &t).unwrap();
    assert!(ma.service_level >= 0.8);
    assert!(metrics(ma.servers - 1, &wa, 20.0).unwrap().service_level < 0.8);
}

#[test]
fn shrinkage_combines_multiplicatively_and_rounds_up() {
    let s = combine_shrinkage(&[0.1, 0.2]).unwrap();
    assert!((s - 0.28).abs() < 1e-12);
    assert_eq!(apply_shrinkage(14, 0.3).unwrap(), 20); // 14 / 0.7 = 20 exactly
    assert_eq!(apply_shrinkage(14, 0.28).unwrap(), 20); // 19.44 → 20
    assert_eq!(apply_shrinkage(0, 0.5).unwrap(), 0);
    assert_eq!(combine_shrinkage(&[0.1, 1.0]).unwrap_err().param(), "shrinkage");
}

fn request() -> StaffingRequest {
    StaffingRequest {
        arrivals: 100.0,
        interval_s: 1800.0,
        aht_s: 180.0,
        target_s: 20.0,
        service_level: 0.8,
        patience_s: None,
        shrinkage: 0.3,
        max_occupancy: None,
        concurrency: 1,
    }
}

#[test]
fn staff_answers_the_documented_fields() {
    let r = staff(&request()).unwrap();
    assert_eq!((r.productive_agents, r.agents, r.servers), (14, 20, 14));
    assert_eq!(r.binding, "service_level");
    let v = serde_json::to_value(&r).unwrap();
    for f in ["agents", "service_level", "p_wait", "asa_s", "occupancy"] {
        assert!(v.get(f).is_some_and(|x| x.is_number()), "missing {f}: {v}");
    }
    assert!(v.get("p_abandon").is_none());
    let ra = staff(&StaffingRequest {
        patience_s: Some(120.0),
        ..request()
    })
    .unwrap();
    let va = serde_json::to_value(&ra).unwrap();
    assert!(va["p_abandon"].is_number());
    assert_eq!(ra.model, "erlang_a");
}

#[test]
fn chat_concurrency_rounds_slots_up_to_whole_agents() {
    // 3 chats at once: handle time as measured at concurrency 3.
    let req = StaffingRequest {
        arrivals: 300.0,
        aht_s: 900.0,
        concurrency: 3,
        shrinkage: 0.0,
        ..request()
    };
    let r = staff(&req).unwrap();
    let slots = required_servers(
        &Workload::new(300.0, 1800.0, 900.0, None).unwrap(),
        &Target {
            target_s: 20.0,
            service_level: Some(0.8),
            max_occupancy: None,
        },
    )
    .unwrap();
    assert_eq!(r.productive_agents, slots.servers.div_ceil(3));
    assert_eq!(r.servers, r.productive_agents * 3);
    assert!(r.service_level >= slots.service_level);
}

#[test]
fn zero_arrivals_need_no_agents() {
    let r = staff(&StaffingRequest {
        arrivals: 0.0,
        ..request()
    })
    .unwrap();
    assert_eq!((r.agents, r.binding.as_str()), (0, "none"));
    assert_eq!(r.service_level, 1.0);
}

#[test]
fn invalid_inputs_name_the_parameter() {
    let cases: Vec<(StaffingRequest, &str)> = vec![
        (
            StaffingRequest {
                aht_s: 0.0,
                ..request()
            },
            "aht_s",
        ),
        (
            StaffingRequest {
                aht_s: -5.0,
                ..request()
            },
            "aht_s",
        ),
        (
            StaffingRequest {
                service_level: 1.0,
                ..request()
            },
            "service_level",
        ),
        (
            StaffingRequest {
                service_level: 80.0,
                ..request()
            },
            "service_level",
        ),
        (
            StaffingRequest {
                arrivals: f64::NAN,
                ..request()
            },
            "arrivals",
        ),
        (
            StaffingRequest {
                arrivals: -1.0,
                ..request()
            },
            "arrivals",
        ),
        (
            StaffingRequest {
                interval_s: 0.0,
                ..request()
            },
            "interval_s",
        ),
        (
            StaffingRequest {
                target_s: f64::INFINITY,
                ..request()
            },
            "target_s",
        ),
        (
            StaffingRequest {
                patience_s: Some(0.0),
                ..request()
            },
            "patience_s",
        ),
        (
            StaffingRequest {
                shrinkage: 1.0,
                ..request()
            },
            "shrinkage",
        ),
        (
            StaffingRequest {
                max_occupancy: Some(0.0),
                ..request()
            },
            "max_occupancy",
        ),
        (
            StaffingRequest {
                concurrency: 0,
                ..request()
            },
            "concurrency",
        ),
    ];
    for (req, param) in cases {
        let err = staff(&req).unwrap_err();
        assert_eq!(err.param(), param, "{err}");
        assert!(err.to_string().contains(param));
    }
}

#[test]
fn backlog_staffing_meets_every_deadline() {
    // 4 hours of email at 30 minutes, 2-hour deadline, 6 minutes each.
    let arrivals = vec![40.0, 10.0, 0.0, 0.0, 60.0, 5.0, 5.0, 0.0];
    let req = BacklogRequest {
        arrivals: arrivals.clone(),
        interval_s: 1800.0,
        aht_s: 360.0,
        response_deadline_s: 7200.0,
        backlog_at_start: 20.0,
        max_occupancy: 0.9,
        shrinkage: 0.2,
    };
    let plan = backlog_staffing(&req).unwrap();
    // Lag 3: arrivals of interval i must be done by the end of i + 3.
    let mut done = 0.0;
    for (t, step) in plan.iter().enumerate() {
        done += step.handled;
        let due: f64 = 20.0 + arrivals.iter().take((t + 1).saturating_sub(3)).sum::<f64>();
        assert!(done + 1e-9 >= due, "interval {t}: done {done} < due {due}");
        assert!(step.agents >= step.productive_agents);
    }
    // Levelled: the 40 at the start are spread, not all handled at once.
    assert!(plan[0].productive_agents < ((60.0_f64) * 360.0 / (1800.0 * 0.9)).ceil() as u32);
    let bad = BacklogRequest {
        response_deadline_s: 0.0,
        ..req
    };
    assert_eq!(backlog_staffing(&bad).unwrap_err().param(), "response_deadline_s");
}
