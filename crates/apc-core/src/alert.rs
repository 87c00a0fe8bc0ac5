//! Alert payloads (SPEC §3). Being written.
