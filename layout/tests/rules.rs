//! The layout of the workspace, as rules a change cannot break unnoticed.
//! ARCHITECTURE.md explains each layer; this file is where the rules live.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn deps(krate: &str) -> BTreeSet<String> {
    let path = root().join(krate).join("Cargo.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    layout::dependencies(&text)
}

/// The workspace's crates from the root manifest's `members`.
fn members() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).unwrap_or_else(|e| panic!("{e}"));
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .unwrap_or_else(|| panic!("no members in the workspace manifest"));
    line.split('"').skip(1).step_by(2).map(str::to_string).collect()
}

/// Which workspace crates each crate may depend on: the layers, bottom up.
const ALLOWED: [(&str, &[&str]); 10] = [
    ("model", &[]),
    ("layout", &[]),
    ("experiments", &["model"]),
    ("staffing", &["model"]),
    ("dashboards", &["model"]),
    ("ingest", &["model"]),
    ("datagen", &["model", "experiments"]),
    ("warehouse", &["model", "ingest"]),
    ("services", &["model", "ingest", "warehouse", "experiments", "staffing"]),
    (
        "api",
        &[
            "model",
            "ingest",
            "warehouse",
            "experiments",
            "staffing",
            "dashboards",
            "datagen",
            "services",
        ],
    ),
];

/// Columnar engines and the lake: only the data crates use them.
const DATA_ENGINE: [&str; 5] = ["arrow", "parquet", "datafusion", "deltalake", "object_store"];

/// HTTP and the Postgres wire: only the binary speaks them.
const PROTOCOLS: [&str; 5] = ["axum", "hyper", "hyper-util", "http-body-util", "datafusion-postgres"];

#[test]
fn every_crate_has_a_place_in_the_layers() {
    let known: BTreeSet<&str> = ALLOWED.iter().map(|(c, _)| *c).collect();
    for m in members() {
        assert!(
            known.contains(m.as_str()),
            "crate {m} has no rule in layout/tests/rules.rs"
        );
    }
}

#[test]
fn crates_depend_only_on_the_layers_below_them() {
    let workspace: BTreeSet<String> = members().into_iter().collect();
    for (krate, allowed) in ALLOWED {
        for d in deps(krate) {
            if workspace.contains(&d) {
                assert!(
                    allowed.contains(&d.as_str()),
                    "{krate} may not depend on {d} (allowed: {allowed:?})"
                );
            }
        }
    }
}

#[test]
fn the_vocabulary_has_no_dependencies() {
    assert_eq!(deps("model"), BTreeSet::new());
}

#[test]
fn statistics_staffing_pages_and_generator_are_free_of_the_data_engine() {
    for krate in ["model", "experiments", "staffing", "dashboards", "datagen"] {
        for d in deps(krate) {
            assert!(!DATA_ENGINE.contains(&d.as_str()), "{krate} may not depend on {d}");
        }
    }
}

#[test]
fn only_the_binary_speaks_http_and_the_postgres_wire() {
    for krate in members() {
        if krate == "api" {
            continue;
        }
        for d in deps(&krate) {
            assert!(!PROTOCOLS.contains(&d.as_str()), "{krate} may not depend on {d}");
        }
    }
}

#[test]
fn the_modules_of_services_import_each_other_without_cycles() {
    let graph = layout::module_graph(&root().join("services/src")).unwrap_or_else(|e| panic!("{e}"));
    assert!(graph.len() > 3, "services/src has too few modules to check: {graph:?}");
    let cycles = layout::cycles(&graph);
    assert!(
        cycles.is_empty(),
        "import cycles between modules of services: {cycles:?}"
    );
}

#[test]
fn the_modules_of_api_import_each_other_without_cycles() {
    // The router imports every handler module; a handler that imported the
    // router (or the CLI) back would tie them all into one knot again.
    let graph = layout::module_graph(&root().join("api/src")).unwrap_or_else(|e| panic!("{e}"));
    assert!(graph.len() > 3, "api/src has too few modules to check: {graph:?}");
    let cycles = layout::cycles(&graph);
    assert!(cycles.is_empty(), "import cycles between modules of api: {cycles:?}");
}
