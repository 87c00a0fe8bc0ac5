//! Entra ID and ARM (SPEC §4). Being written.
