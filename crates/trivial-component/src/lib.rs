//! A Spin HTTP component that answers `200 ok` to everything, touching no variable, store or
//! outbound host: the floor of a request on a host (instantiation, the request and the answer),
//! which `crates/test-host/examples/apc-stores.rs` measures beside alert-packet-capture's paths.
//! Built by `scripts/bench.sh` with `cargo build --target wasm32-wasip2 --release -p trivial-component`.

#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
fn handle(_req: spin_sdk::http::Request) -> spin_sdk::http::Response {
    spin_sdk::http::Response::new(200, "ok")
}
