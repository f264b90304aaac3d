//! CSV of the analyses' tables.

use serde_json::{Value, json};

use super::*;

fn table(columns: &[&str], rows: Vec<Vec<Value>>) -> Table {
    Table {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows,
    }
}

#[test]
fn csv_of_one_table_and_of_sections() {
    let tags = table(&["tag", "conversations"], vec![vec![json!("a,b"), json!(3)]]);
    let pairs = table(
        &["tag", "other_tag", "lift"],
        vec![vec![json!("x"), json!("y \"q\""), json!(1.5)]],
    );
    assert_eq!(tables_csv(&[("tags", &tags)]), "tag,conversations\n\"a,b\",3\n");
    assert_eq!(
        tables_csv(&[("tags", &tags), ("pairs", &pairs)]),
        "section,tag,conversations,other_tag,lift\ntags,\"a,b\",3,,\npairs,x,,\"y \"\"q\"\"\",1.5\n"
    );
    // No rows: the header alone.
    assert_eq!(tables_csv(&[("tags", &table(&["tag"], vec![]))]), "tag\n");
}
