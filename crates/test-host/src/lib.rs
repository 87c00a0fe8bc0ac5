//! Test host (being written).
