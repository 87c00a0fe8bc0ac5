//! Capture records: `v1:act:{group}:{vm}:{name}` while active, `v1:cap:{name}:{finished}` once
//! terminal (the finish time in the key lets a listing apply `max_records` and the retention
//! without reading records),
//! `v1:due:{name}` while a terminal record still has work, and the create claim
//! `v1:claim:{name}`. This module is the only writer of those keys.
//!
//! An active record's key names its VM (and scale-set group), so one listing of the store tells
//! which VMs are held and how many captures are active, without reading a record.

use super::{Listing, StoreError, hash16, read, write};
use crate::domain::record::CaptureRecord;
use crate::domain::timefmt;
use crate::ports::{KvStore, UnixSeconds};

/// Prefix of active records.
pub const ACT_PREFIX: &str = "v1:act:";
/// Prefix of terminal records.
pub const CAP_PREFIX: &str = "v1:cap:";
/// Prefix of the markers of terminal records with work left.
pub const DUE_PREFIX: &str = "v1:due:";
/// Prefix of create claims.
pub const CLAIM_PREFIX: &str = "v1:claim:";

/// Key of a terminal record finished at `finished_at`.
pub fn cap_key(name: &str, finished_at: UnixSeconds) -> String {
    format!("{CAP_PREFIX}{name}:{}", timefmt::compact(finished_at))
}

/// Parse `v1:cap:{name}:{finished}`.
pub fn parse_cap_key(key: &str) -> Option<(String, UnixSeconds)> {
    let (name, t) = key.strip_prefix(CAP_PREFIX)?.rsplit_once(':')?;
    Some((name.to_string(), timefmt::parse_compact(t)?))
}

fn finished_key(rec: &CaptureRecord) -> String {
    cap_key(&rec.id, rec.finished_at.unwrap_or(rec.updated_at))
}

/// Key of the marker saying terminal record `name` still has work.
pub fn due_key(name: &str) -> String {
    format!("{DUE_PREFIX}{name}")
}

/// Key of the create claim of capture `name`.
pub fn claim_key(name: &str) -> String {
    format!("{CLAIM_PREFIX}{name}")
}

/// The scale set part of a lower-case target id, for scale sets and their instances.
pub fn scale_set_of(target_key: &str) -> Option<&str> {
    const MARK: &str = "/providers/microsoft.compute/virtualmachinescalesets/";
    let at = target_key.find(MARK)? + MARK.len();
    let end = target_key[at..].find('/').map_or(target_key.len(), |i| at + i);
    Some(&target_key[..end])
}

/// The key of an active record, parsed: which machine(s) it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActKey {
    /// Digest of the scale set (the VM's own digest for a plain VM).
    pub group: String,
    /// Digest of the target (VM, scale set or instance).
    pub vm: String,
    /// The capture name (the record id).
    pub name: String,
}

impl ActKey {
    /// The key of capture `name` on the target with lower-case id `target_key`.
    pub fn of(target_key: &str, name: &str) -> ActKey {
        let vm = hash16(target_key);
        let group = scale_set_of(target_key).map_or_else(|| vm.clone(), hash16);
        ActKey { group, vm, name: name.to_string() }
    }

    /// The key of a record.
    pub fn of_record(rec: &CaptureRecord) -> ActKey {
        ActKey::of(&rec.vm_key, &rec.id)
    }

    /// Parse `v1:act:{group}:{vm}:{name}`.
    pub fn parse(key: &str) -> Option<ActKey> {
        let rest = key.strip_prefix(ACT_PREFIX)?;
        let mut parts = rest.splitn(3, ':');
        let (group, vm, name) = (parts.next()?, parts.next()?, parts.next()?);
        let digest = |s: &str| s.len() == 16 && s.bytes().all(|c| c.is_ascii_hexdigit());
        (digest(group) && digest(vm) && !name.is_empty()).then(|| ActKey {
            group: group.to_string(),
            vm: vm.to_string(),
            name: name.to_string(),
        })
    }

    /// The store key.
    pub fn key(&self) -> String {
        format!("{ACT_PREFIX}{}:{}:{}", self.group, self.vm, self.name)
    }

    /// Would an active capture for `self` and one for `other` capture the same machine? Within
    /// one scale set instances are distinct machines; the whole set covers them all.
    pub fn overlaps(&self, other: &ActKey) -> bool {
        self.vm == other.vm || (self.group == other.group && (self.vm == self.group || other.vm == other.group))
    }
}

/// Where a record was found, so that moving it writes and deletes only what exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Not stored yet.
    New,
    /// Under its `act` key.
    Active,
    /// Under `cap`; `due`: with its work marker.
    Finished {
        /// The `v1:due:` marker exists.
        due: bool,
    },
}

/// Read record `name` through `listing` (one `list_keys` when none is given): the terminal
/// one if listed (it wins over a left-over active one), else the active one.
pub fn load(
    kv: &dyn KvStore,
    name: &str,
    listing: Option<&Listing>,
) -> Result<Option<(CaptureRecord, Place)>, StoreError> {
    let owned;
    let listing = match listing {
        Some(l) => l,
        None => {
            owned = Listing::load(kv)?;
            &owned
        }
    };
    if let Some((_, finished)) = listing.finished.iter().find(|(n, _)| n == name)
        && let Some(rec) = read::<CaptureRecord>(kv, &cap_key(name, *finished))?
    {
        let due = listing.due.iter().any(|d| d == name);
        return Ok(Some((rec, Place::Finished { due })));
    }
    let Some(act) = listing.active.iter().find(|a| a.name == name) else { return Ok(None) };
    Ok(read::<CaptureRecord>(kv, &act.key())?.map(|r| (r, Place::Active)))
}

/// Read an active record by its key (`None`: gone, e.g. finished meanwhile).
pub fn load_active(kv: &dyn KvStore, key: &ActKey) -> Result<Option<CaptureRecord>, StoreError> {
    read(kv, &key.key())
}

/// Store `rec` where its state says (a plain `set`: the step's result; a concurrent writer's
/// lost update is re-derived from Azure at the next check). A record becoming terminal is
/// written under `cap` before its `act` key is deleted, so it is never out of the store.
pub fn save(kv: &dyn KvStore, rec: &CaptureRecord, from: Place) -> Result<Place, StoreError> {
    if rec.state.is_active() {
        write(kv, &ActKey::of_record(rec).key(), rec)?;
        return Ok(Place::Active);
    }
    write(kv, &finished_key(rec), rec)?;
    let due = rec.next_check_at.is_some();
    let had_due = matches!(from, Place::Finished { due: true });
    if due && !had_due {
        kv.set(&due_key(&rec.id), b"")?;
    } else if !due && had_due {
        kv.delete(&due_key(&rec.id))?;
    }
    if from == Place::Active {
        kv.delete(&ActKey::of_record(rec).key())?;
        // The claim only matters while a create may still happen.
        kv.delete(&claim_key(&rec.id))?;
    }
    Ok(Place::Finished { due })
}

/// Delete the work marker of terminal record `name` (it has no work left).
pub fn clear_due(kv: &dyn KvStore, name: &str) -> Result<(), StoreError> {
    kv.delete(&due_key(name))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn act_keys_round_trip_and_overlap_by_machine() {
        let vm = ActKey::of("/subscriptions/s/resourcegroups/r/providers/microsoft.compute/virtualmachines/a", "n1");
        assert_eq!(ActKey::parse(&vm.key()), Some(vm.clone()));
        assert_eq!(vm.group, vm.vm, "a plain VM is its own group");
        let set = "/subscriptions/s/resourcegroups/r/providers/microsoft.compute/virtualmachinescalesets/ss";
        let whole = ActKey::of(set, "n2");
        let one = ActKey::of(&format!("{set}/virtualmachines/1"), "n3");
        let two = ActKey::of(&format!("{set}/virtualmachines/2"), "n4");
        assert!(whole.overlaps(&one) && one.overlaps(&whole));
        assert!(!one.overlaps(&two), "two instances are two machines");
        assert!(!vm.overlaps(&whole));
        assert!(vm.key().len() <= 256);
        assert_eq!(ActKey::parse("v1:act:xyz:abc:n"), None);
    }
}
