//! Where the public data sets are: `--data DIR`, else `SOLYX_DATA`, else
//! the default data folder beside the repository.

use std::path::PathBuf;

/// The data folder, or `None` (with the reason printed) when absent.
pub fn data_dir() -> Option<PathBuf> {
    let args: Vec<String> = std::env::args().collect();
    let flag = args
        .iter()
        .position(|a| a == "--data")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let dir = flag
        .or_else(|| std::env::var_os("SOLYX_DATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "skipped: no data folder at {} (give --data DIR or SOLYX_DATA)",
            dir.display()
        );
        None
    }
}
