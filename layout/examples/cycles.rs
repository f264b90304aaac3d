//! Prints the import cycles between the top-level modules of a crate:
//! `cargo run -p layout --example cycles -- api/src`.

fn main() -> std::io::Result<()> {
    let src = std::env::args().nth(1).unwrap_or_else(|| "services/src".into());
    let graph = layout::module_graph(std::path::Path::new(&src))?;
    let cycles = layout::cycles(&graph);
    println!("{src}: {} modules, {} import cycle(s)", graph.len(), cycles.len());
    for c in cycles {
        println!(
            "  {} modules: {}",
            c.len(),
            c.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(())
}
