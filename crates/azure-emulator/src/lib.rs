//! Azure emulator (being written).
