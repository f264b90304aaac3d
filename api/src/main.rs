//! `cxlake`: the analytics service of the omnichannel customer-service
//! platform. See the README for the commands and `ARCHITECTURE.md` for the
//! map of the code.

use std::process::ExitCode;

use api::cli;
use clap::Parser;

/// mimalloc returns freed memory to the system; glibc's malloc kept the
/// freed buffers of builds and queries resident (docs/benchmarks.md,
/// rollup build memory).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("CXLAKE_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,deltalake=warn,datafusion=warn,buoyant_kernel=warn,deltalake_core::operations::vacuum=error",
        )
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("CXLAKE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
