//! A scripted fake transport (being written).
