//! Embeds the graphql-ws browser client (an npm dependency of `web/`, installed with
//! `npm ci --prefix api/web`) into the binary when it is installed. Without it the screens load
//! the same pinned version from a CDN, and failing that poll over plain HTTP.

use std::path::Path;

const CLIENT: &str = "web/node_modules/graphql-ws/umd/graphql-ws.min.js";

fn main() {
    println!("cargo::rerun-if-changed={CLIENT}");
    println!("cargo::rerun-if-changed=web/package-lock.json");
    let out_dir = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into());
    let target = Path::new(&out_dir).join("graphql-ws.min.js");
    let bytes = std::fs::read(CLIENT).unwrap_or_default();
    if let Err(error) = std::fs::write(&target, bytes) {
        println!("cargo::warning=cannot stage the graphql-ws client: {error}");
    }
}
