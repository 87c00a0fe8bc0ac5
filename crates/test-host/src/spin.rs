//! Spin's own imports, implemented over the shared [`KvStore`]: `fermyon:spin/key-value`,
//! `fermyon:spin/variables`, `wasi:keyvalue/store` and `wasi:keyvalue/atomics` (draft2).
//! The WASI imports come from `wasmtime_wasi` / `wasmtime_wasi_http`.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{Resource, ResourceTable};

use crate::kv::{CasHandle, KvFailure, KvSession, SwapResult};

#[allow(missing_docs, clippy::all)]
mod generated {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "test-host:spin-imports/spin-imports",
        imports: { default: trappable },
        require_store_data_send: true,
        with: {
            "fermyon:spin/key-value.store": super::SpinStore,
            "wasi:keyvalue/store.bucket": super::Bucket,
            "wasi:keyvalue/atomics.cas": super::Cas,
        },
    });
}

use generated::fermyon::spin::{key_value as spin_kv, variables as spin_vars};
use generated::wasi::keyvalue::{atomics, store as wasi_kv};

/// An open `fermyon:spin/key-value` store.
pub struct SpinStore;

/// An open `wasi:keyvalue` bucket.
pub struct Bucket;

/// A `wasi:keyvalue/atomics` CAS handle.
pub struct Cas(CasHandle);

/// What an instance knows of the application: shared data plus its own counters.
pub(crate) struct SpinState {
    /// The request's view of the shared store (counts its operations).
    pub(crate) kv: KvSession,
    pub(crate) kv_labels: Arc<Vec<String>>,
    pub(crate) variables: Arc<BTreeMap<String, String>>,
}

/// What the Spin imports see of an instance's store data.
pub(crate) struct SpinCtx<'a> {
    pub(crate) state: &'a mut SpinState,
    pub(crate) table: &'a mut ResourceTable,
}

impl SpinCtx<'_> {
    fn spin(&mut self) -> (&mut SpinState, &mut ResourceTable) {
        (&mut *self.state, &mut *self.table)
    }

    /// One counted, faultable data operation on an open store or bucket `handle`.
    fn data_op<R: 'static, V, E>(
        &mut self,
        handle: &Resource<R>,
        err: fn(KvFailure) -> E,
        run: impl FnOnce(&KvSession) -> Result<V, KvFailure>,
    ) -> wasmtime::Result<Result<V, E>> {
        self.table.get(handle)?;
        Ok(run(&self.state.kv).map_err(err))
    }
}

/// The store data `T` of an instance gives the Spin imports their view through this.
pub(crate) trait SpinView: Send {
    fn spin_ctx(&mut self) -> SpinCtx<'_>;
}

struct SpinData;

impl wasmtime::component::HasData for SpinData {
    type Data<'a> = SpinCtx<'a>;
}

/// The `wasi:keyvalue/atomics` interface's name, as a component imports it.
pub(crate) const ATOMICS_INTERFACE: &str = "wasi:keyvalue/atomics@0.2.0-draft2";

/// Adds the Spin-provided interfaces to a linker; `wasi:keyvalue/atomics` only when `atomics`
/// (Akamai Functions does not offer it).
pub(crate) fn add_to_linker<T: SpinView + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    atomics: bool,
) -> wasmtime::Result<()> {
    spin_kv::add_to_linker::<T, SpinData>(linker, T::spin_ctx)?;
    spin_vars::add_to_linker::<T, SpinData>(linker, T::spin_ctx)?;
    wasi_kv::add_to_linker::<T, SpinData>(linker, T::spin_ctx)?;
    if atomics {
        self::atomics::add_to_linker::<T, SpinData>(linker, T::spin_ctx)?;
    }
    Ok(())
}

/// Spin answers `access-denied` for a label the component is not granted; the manifest check
/// already refused any label but `default`, so a granted label always exists.
fn label_allowed(state: &SpinState, label: &str) -> bool {
    state.kv_labels.iter().any(|l| l == label)
}

fn spin_err(f: KvFailure) -> spin_kv::Error {
    spin_kv::Error::Other(f.0)
}

fn wasi_err(f: KvFailure) -> wasi_kv::Error {
    wasi_kv::Error::Other(f.0)
}

impl spin_kv::Host for SpinCtx<'_> {}

impl spin_kv::HostStore for SpinCtx<'_> {
    fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<SpinStore>, spin_kv::Error>> {
        let (state, table) = self.spin();
        if let Err(f) = state.kv.open() {
            return Ok(Err(spin_err(f)));
        }
        if !label_allowed(state, &label) {
            return Ok(Err(spin_kv::Error::AccessDenied));
        }
        Ok(Ok(table.push(SpinStore)?))
    }

    fn get(
        &mut self,
        store: Resource<SpinStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, spin_kv::Error>> {
        self.data_op(&store, spin_err, |kv| kv.get(&key))
    }

    fn set(
        &mut self,
        store: Resource<SpinStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), spin_kv::Error>> {
        self.data_op(&store, spin_err, |kv| kv.set(&key, &value))
    }

    fn delete(&mut self, store: Resource<SpinStore>, key: String) -> wasmtime::Result<Result<(), spin_kv::Error>> {
        self.data_op(&store, spin_err, |kv| kv.delete(&key))
    }

    fn exists(&mut self, store: Resource<SpinStore>, key: String) -> wasmtime::Result<Result<bool, spin_kv::Error>> {
        self.data_op(&store, spin_err, |kv| kv.exists(&key))
    }

    fn get_keys(&mut self, store: Resource<SpinStore>) -> wasmtime::Result<Result<Vec<String>, spin_kv::Error>> {
        self.data_op(&store, spin_err, |kv| kv.get_keys())
    }

    fn drop(&mut self, store: Resource<SpinStore>) -> wasmtime::Result<()> {
        self.spin().1.delete(store)?;
        Ok(())
    }
}

impl spin_vars::Host for SpinCtx<'_> {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, spin_vars::Error>> {
        let (state, _) = self.spin();
        // Spin only exposes names mapped in `[component.x.variables]`.
        Ok(state.variables.get(&name).cloned().ok_or(spin_vars::Error::Undefined(format!("no variable for {name:?}"))))
    }
}

impl wasi_kv::Host for SpinCtx<'_> {
    fn open(&mut self, identifier: String) -> wasmtime::Result<Result<Resource<Bucket>, wasi_kv::Error>> {
        let (state, table) = self.spin();
        if let Err(f) = state.kv.open() {
            return Ok(Err(wasi_err(f)));
        }
        if !label_allowed(state, &identifier) {
            return Ok(Err(wasi_kv::Error::AccessDenied));
        }
        Ok(Ok(table.push(Bucket)?))
    }
}

impl wasi_kv::HostBucket for SpinCtx<'_> {
    fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wasi_kv::Error>> {
        self.data_op(&bucket, wasi_err, |kv| kv.get(&key))
    }

    fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        self.data_op(&bucket, wasi_err, |kv| kv.set(&key, &value))
    }

    fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> wasmtime::Result<Result<(), wasi_kv::Error>> {
        self.data_op(&bucket, wasi_err, |kv| kv.delete(&key))
    }

    fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> wasmtime::Result<Result<bool, wasi_kv::Error>> {
        self.data_op(&bucket, wasi_err, |kv| kv.exists(&key))
    }

    fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        _cursor: Option<String>,
    ) -> wasmtime::Result<Result<wasi_kv::KeyResponse, wasi_kv::Error>> {
        // Spin answers every key in one page, with no cursor.
        self.data_op(&bucket, wasi_err, |kv| Ok(wasi_kv::KeyResponse { keys: kv.get_keys()?, cursor: None }))
    }

    fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.spin().1.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for SpinCtx<'_> {
    fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, wasi_kv::Error>> {
        self.data_op(&bucket, wasi_err, |kv| kv.increment(&key, delta))
    }

    fn swap(&mut self, cas: Resource<Cas>, value: Vec<u8>) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let (state, table) = self.spin();
        let Cas(handle) = table.delete(cas)?;
        match state.kv.swap(handle, &value) {
            Err(f) => Ok(Err(atomics::CasError::StoreError(wasi_err(f)))),
            Ok(SwapResult::Swapped) => Ok(Ok(())),
            Ok(SwapResult::CasFailed(fresh)) => Ok(Err(atomics::CasError::CasFailed(table.push(Cas(fresh))?))),
        }
    }
}

impl atomics::HostCas for SpinCtx<'_> {
    fn new(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<Cas>, wasi_kv::Error>> {
        let (state, table) = self.spin();
        table.get(&bucket)?;
        match state.kv.cas(&key) {
            Ok(handle) => Ok(Ok(table.push(Cas(handle))?)),
            Err(f) => Ok(Err(wasi_err(f))),
        }
    }

    fn current(&mut self, cas: Resource<Cas>) -> wasmtime::Result<Result<Option<Vec<u8>>, wasi_kv::Error>> {
        let (state, table) = self.spin();
        let Cas(handle) = table.get_mut(&cas)?;
        Ok(state.kv.cas_current(handle).map_err(wasi_err))
    }

    fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.spin().1.delete(cas)?;
        Ok(())
    }
}
