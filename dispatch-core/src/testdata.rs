//! Where the shared real data lives (`../shared/data/` beside the checkout), for tests,
//! benchmarks and the demo. This only builds paths; it opens nothing.

use std::path::PathBuf;

/// The shared data folder: `$DISPATCH_SHARED_DATA` if set, else `<checkout>/../shared/data`.
pub fn shared_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DISPATCH_SHARED_DATA") {
        return PathBuf::from(dir);
    }
    // CARGO_MANIFEST_DIR is <checkout>/dispatch-core.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

/// The Porto Alegre OSM extract.
pub fn porto_alegre_pbf() -> PathBuf {
    shared_data_dir().join("porto_alegre.osm.pbf")
}

/// The Porto Alegre population hexgrid.
pub fn porto_alegre_hexgrid() -> PathBuf {
    shared_data_dir().join("porto_alegre_hexgrid.csv")
}
