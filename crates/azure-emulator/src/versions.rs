//! The stable api-versions Azure publishes for the resource types the emulator serves, and
//! ARM's answers for any other version.
//!
//! Sources: the directory names under `specification/compute/resource-manager/Microsoft.Compute/ComputeRP/stable/`
//! and `specification/network/resource-manager/Microsoft.Network/{,Network/}stable/` of
//! Azure/azure-rest-api-specs (2025-05-01 … 2026-07-01 checked one by one; Network moved its
//! newer versions under `Microsoft.Network/Network/stable/`), and the default api-versions of
//! azure-mgmt-compute 39.0.0 (2026-04-01) and azure-mgmt-network 33.1.0 (2026-03-01).
//! Preview versions are left out: the component never uses one.

/// `Microsoft.Compute` `virtualMachines`, `virtualMachineScaleSets` and
/// `virtualMachineScaleSets/virtualMachines` (ComputeRP), oldest first.
pub const COMPUTE: &[&str] = &[
    "2015-06-15",
    "2016-03-30",
    "2017-03-30",
    "2017-12-01",
    "2018-04-01",
    "2018-06-01",
    "2018-10-01",
    "2019-03-01",
    "2019-07-01",
    "2019-12-01",
    "2020-06-01",
    "2020-12-01",
    "2021-03-01",
    "2021-04-01",
    "2021-07-01",
    "2021-11-01",
    "2022-03-01",
    "2022-08-01",
    "2022-11-01",
    "2023-03-01",
    "2023-07-01",
    "2023-09-01",
    "2024-03-01",
    "2024-07-01",
    "2024-11-01",
    "2025-04-01",
    "2025-11-01",
    "2026-04-01",
];

/// `Microsoft.Network` `networkWatchers` and `networkWatchers/packetCaptures` (Network
/// Watcher exists since 2016-09-01), oldest first.
pub const NETWORK: &[&str] = &[
    "2016-09-01",
    "2016-12-01",
    "2017-03-01",
    "2017-06-01",
    "2017-08-01",
    "2017-09-01",
    "2017-10-01",
    "2017-11-01",
    "2018-01-01",
    "2018-02-01",
    "2018-04-01",
    "2018-06-01",
    "2018-07-01",
    "2018-08-01",
    "2018-10-01",
    "2018-11-01",
    "2018-12-01",
    "2019-02-01",
    "2019-04-01",
    "2019-06-01",
    "2019-07-01",
    "2019-08-01",
    "2019-09-01",
    "2019-11-01",
    "2019-12-01",
    "2020-03-01",
    "2020-04-01",
    "2020-05-01",
    "2020-06-01",
    "2020-07-01",
    "2020-08-01",
    "2020-11-01",
    "2021-02-01",
    "2021-03-01",
    "2021-05-01",
    "2021-08-01",
    "2022-01-01",
    "2022-05-01",
    "2022-07-01",
    "2022-09-01",
    "2022-11-01",
    "2023-02-01",
    "2023-04-01",
    "2023-05-01",
    "2023-06-01",
    "2023-09-01",
    "2023-11-01",
    "2024-01-01",
    "2024-03-01",
    "2024-05-01",
    "2024-07-01",
    "2024-10-01",
    "2025-01-01",
    "2025-05-01",
    "2025-07-01",
    "2025-09-01",
    "2026-01-01",
    "2026-03-01",
    "2026-07-01",
];

/// Whether `v` has ARM's shape `YYYY-MM-DD` with an optional `-suffix` (`-preview`).
pub(crate) fn well_formed(v: &str) -> bool {
    let date = v.get(..10).unwrap_or("");
    let rest = v.get(10..).unwrap_or("");
    date.len() == 10
        && date.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() })
        && (rest.is_empty()
            || (rest.starts_with('-') && rest.len() > 1 && rest[1..].bytes().all(|b| b.is_ascii_alphanumeric())))
}

/// Whether `v` is one of `published` (ARM compares case-insensitively).
pub(crate) fn supported(published: &[&str], v: &str) -> bool {
    published.iter().any(|p| p.eq_ignore_ascii_case(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_sorted_unique_and_well_formed() {
        for list in [COMPUTE, NETWORK] {
            assert!(list.windows(2).all(|w| w[0] < w[1]));
            assert!(list.iter().all(|v| well_formed(v)));
        }
        assert!(well_formed("2025-07-01-preview"));
        assert!(!well_formed("2025-7-1"));
        assert!(!well_formed("latest"));
        assert!(supported(NETWORK, "2025-07-01") && !supported(NETWORK, "2025-07-02"));
    }
}
