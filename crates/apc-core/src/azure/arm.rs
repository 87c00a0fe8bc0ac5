//! The ARM calls: VM / scale-set GET, Network Watcher lookup (cached), packet captures.

use serde_json::{Map, Value, json};

use super::error::{AzureError, from_arm_response, from_transport};
use super::model::{self, CaptureCreated, CaptureInfo, CaptureParams, CaptureStatus, VmInfo, normalize_location};
use super::{Azure, COMPUTE_API_VERSION, NETWORK_API_VERSION, USER_AGENT};
use crate::ports::{Method, OutboundRequest, OutboundResponse};
use crate::resource_id::{ResourceId, Target, arm_url};

/// Pages of the watcher list we read at most.
const MAX_WATCHER_PAGES: usize = 10;
/// Longest `nextLink` we follow (ARM's are a few hundred characters; 4 KB is the documented floor).
const MAX_NEXT_LINK: usize = 8192;

/// The cache entry of one region's watcher.
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedWatcher {
    id: String,
}

fn watcher_key(subscription: &str, location: &str) -> String {
    format!("v1:nw:{subscription}:{location}")
}

/// Subscription ids and locations go into keys and URLs: refuse anything unusual up front.
fn plain(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

fn bad_request(code: &str, message: String) -> AzureError {
    AzureError::Permanent { status: 400, code: code.to_string(), message }
}

impl Azure<'_> {
    /// Send one ARM request with the bearer token; on a 401, drop the cached token, fetch a new
    /// one and try once more. Any HTTP answer is returned; transport failures are sorted.
    fn arm_send(&self, method: Method, url: &str, body: Option<&Value>) -> Result<OutboundResponse, AzureError> {
        let body = match body {
            Some(v) => {
                Some(serde_json::to_vec(v).map_err(|_| AzureError::transient("could not encode the request body"))?)
            }
            None => None,
        };
        let mut token = self.token()?;
        let mut refreshed = false;
        loop {
            let mut headers = vec![
                ("authorization".to_string(), format!("Bearer {}", token.expose())),
                ("accept".to_string(), "application/json".to_string()),
                ("user-agent".to_string(), USER_AGENT.to_string()),
            ];
            if body.is_some() {
                headers.push(("content-type".to_string(), "application/json".to_string()));
            }
            let request =
                OutboundRequest { method, url: url.to_string(), headers, body: body.clone().unwrap_or_default() };
            let resp = self.send(&request).map_err(|e| from_transport(&e, "azure_arm_endpoint"))?;
            if resp.status == 401 && !refreshed {
                // Revoked or expired early: one fresh token, one retry.
                self.drop_token();
                token = self.fetch_token()?;
                refreshed = true;
                continue;
            }
            return Ok(resp);
        }
    }

    /// [`Self::arm_send`], with any status outside `ok` turned into an error.
    fn arm_expect(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        ok: &[u16],
    ) -> Result<OutboundResponse, AzureError> {
        let resp = self.arm_send(method, url, body)?;
        if ok.contains(&resp.status) { Ok(resp) } else { Err(from_arm_response(&resp)) }
    }

    /// GET the VM (or, for a scale set or one of its instances, the scale set): normalised
    /// location, OS type, and whether the Network Watcher agent extension is installed.
    pub fn get_vm(&self, target: &ResourceId) -> Result<VmInfo, AzureError> {
        let (id, scale_set) = match Target::from_id(target) {
            Some(Target::Vm(id)) => (id, false),
            Some(Target::Vmss(id)) | Some(Target::VmssInstance { vmss: id, .. }) => (id, true),
            None => {
                return Err(bad_request("InvalidTarget", format!("{target} is not a VM or scale set")));
            }
        };
        let url = arm_url(&self.cfg.arm_endpoint, &id.path_segments(), COMPUTE_API_VERSION);
        let resp = self.arm_expect(Method::Get, &url, None, &[200])?;
        let body = json_body(&resp, "the VM")?;
        model::parse_vm(&body, scale_set).ok_or_else(|| AzureError::transient("the VM answer has no location"))
    }

    /// The Network Watcher of (subscription, location): from the KV cache, else from the
    /// subscription's watcher list (every region found is cached).
    pub fn find_watcher(&self, subscription: &str, location: &str) -> Result<ResourceId, AzureError> {
        let sub = subscription.to_ascii_lowercase();
        let loc = normalize_location(location);
        if !plain(&sub, 64) || !plain(&loc, 64) {
            return Err(bad_request("InvalidLocation", "subscription or location holds unexpected characters".into()));
        }
        if let Some(id) = self.cached_watcher(&sub, &loc) {
            return Ok(id);
        }

        let mut url = arm_url(
            &self.cfg.arm_endpoint,
            &["subscriptions", &sub, "providers", "Microsoft.Network", "networkWatchers"],
            NETWORK_API_VERSION,
        );
        let mut cached: Vec<String> = Vec::new();
        let mut found = None;
        for _ in 0..MAX_WATCHER_PAGES {
            let resp = self.arm_expect(Method::Get, &url, None, &[200])?;
            let body = json_body(&resp, "the Network Watcher list")?;
            for item in body.get("value").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
                let Some(id) = model::str_at(item, &["id"]).and_then(|s| ResourceId::parse(s).ok()) else {
                    continue;
                };
                let Some(item_loc) = model::str_at(item, &["location"]).map(normalize_location) else {
                    continue;
                };
                if !id.is_type("Microsoft.Network", &["networkWatchers"])
                    || id.subscription() != sub
                    || !plain(&item_loc, 64)
                {
                    continue;
                }
                if cached.contains(&item_loc) {
                    continue; // one watcher per region; keep the first
                }
                self.cache_watcher(&sub, &item_loc, &id);
                if item_loc == loc {
                    found = Some(id);
                }
                cached.push(item_loc);
            }
            if found.is_some() {
                break;
            }
            match model::str_at(&body, &["nextLink"]) {
                Some(next) if self.on_arm_host(next) => url = next.to_string(),
                _ => break,
            }
        }
        found.ok_or_else(|| AzureError::Permanent {
            status: 404,
            code: "NetworkWatcherNotFound".to_string(),
            message: format!(
                "no Network Watcher in region {loc} of subscription {sub}: enable Network Watcher for that region \
                 (portal: Network Watcher > Enable, or `az network watcher configure --locations {loc} --enabled true`), \
                 and give the service principal Microsoft.Network/networkWatchers/read"
            ),
        })
    }

    /// Drop the cached watcher (call after ARM says the watcher is gone).
    pub fn forget_watcher(&self, subscription: &str, location: &str) {
        let key = watcher_key(&subscription.to_ascii_lowercase(), &normalize_location(location));
        // A failed delete leaves a stale entry; the next 404 comes back here.
        let _ = self.world.kv.delete(&key);
    }

    fn cached_watcher(&self, sub: &str, loc: &str) -> Option<ResourceId> {
        let raw = self.world.kv.get(&watcher_key(sub, loc)).ok()??;
        let entry: CachedWatcher = serde_json::from_slice(&raw).ok()?;
        ResourceId::parse(&entry.id).ok().filter(|id| id.is_type("Microsoft.Network", &["networkWatchers"]))
    }

    fn cache_watcher(&self, sub: &str, loc: &str, id: &ResourceId) {
        if let Ok(value) = serde_json::to_vec(&CachedWatcher { id: id.to_string() }) {
            // A KV failure only costs a list call next time.
            let _ = self.world.kv.set(&watcher_key(sub, loc), &value);
        }
    }

    /// True when `link` is on the configured ARM scheme, host and port (and looks like a URL).
    fn on_arm_host(&self, link: &str) -> bool {
        link.len() <= MAX_NEXT_LINK
            && crate::origin::Origin::split_url(link).is_ok_and(|(origin, _)| origin == self.cfg.arm_endpoint)
    }

    fn capture_url(&self, watcher: &ResourceId, name: &str, action: Option<&str>) -> String {
        let mut segments = watcher.path_segments();
        segments.push("packetCaptures");
        segments.push(name);
        if let Some(action) = action {
            segments.push(action);
        }
        arm_url(&self.cfg.arm_endpoint, &segments, NETWORK_API_VERSION)
    }

    /// PUT the packet capture `name` on `watcher`. A capture of that name that already exists
    /// (an earlier attempt whose answer was lost) is read back and reported with
    /// `already_existed: true`.
    pub fn create_capture(
        &self,
        watcher: &ResourceId,
        name: &str,
        params: &CaptureParams,
    ) -> Result<CaptureCreated, AzureError> {
        let url = self.capture_url(watcher, name, None);
        let body = capture_body(params);
        let resp = self.arm_send(Method::Put, &url, Some(&body))?;
        match resp.status {
            200 | 201 => {
                // The capture exists now whatever the body says: an unreadable body must not make
                // the caller retry the PUT, so it only leaves the fields empty.
                let info = serde_json::from_slice::<Value>(&resp.body)
                    .map(|v| model::parse_capture(&v))
                    .unwrap_or(CaptureInfo { provisioning_state: None, storage_path: None, file_path: None });
                Ok(CaptureCreated {
                    provisioning_state: info.provisioning_state,
                    storage_path: info.storage_path,
                    already_existed: false,
                })
            }
            409 => {
                let conflict = from_arm_response(&resp);
                if conflict.is_retryable() {
                    return Err(conflict);
                }
                // The Network RP refuses a PUT on an existing capture name with 409; whether ours
                // exists is decided by reading it, not by the (undocumented) error code.
                match self.get_capture(watcher, name) {
                    Ok(info) => Ok(CaptureCreated {
                        provisioning_state: info.provisioning_state,
                        storage_path: info.storage_path,
                        already_existed: true,
                    }),
                    Err(AzureError::NotFound { .. }) => Err(conflict),
                    Err(other) => Err(other),
                }
            }
            _ => Err(from_arm_response(&resp)),
        }
    }

    /// POST `…/{name}/queryStatus`: 200, or 202 whose body carries the same fields. The 202's
    /// `Location` is never followed.
    pub fn query_status(&self, watcher: &ResourceId, name: &str) -> Result<CaptureStatus, AzureError> {
        let url = self.capture_url(watcher, name, Some("queryStatus"));
        let resp = self.arm_expect(Method::Post, &url, None, &[200, 202])?;
        serde_json::from_slice::<Value>(&resp.body).ok().as_ref().and_then(model::parse_status).ok_or_else(|| {
            AzureError::Transient {
                detail: format!("queryStatus answered {} without a packetCaptureStatus", resp.status),
                retry_after_secs: super::error::retry_after_header(&resp),
            }
        })
    }

    /// GET `…/{name}`: provisioning state and where the file goes.
    pub fn get_capture(&self, watcher: &ResourceId, name: &str) -> Result<CaptureInfo, AzureError> {
        let url = self.capture_url(watcher, name, None);
        let resp = self.arm_expect(Method::Get, &url, None, &[200])?;
        Ok(model::parse_capture(&json_body(&resp, "the packet capture")?))
    }

    /// POST `…/{name}/stop` (200, or 202 accepted; the `Location` is never followed).
    pub fn stop_capture(&self, watcher: &ResourceId, name: &str) -> Result<(), AzureError> {
        let url = self.capture_url(watcher, name, Some("stop"));
        self.arm_expect(Method::Post, &url, None, &[200, 202]).map(drop)
    }

    /// DELETE `…/{name}` (200/202/204; 404 also fine: already gone).
    pub fn delete_capture(&self, watcher: &ResourceId, name: &str) -> Result<(), AzureError> {
        let url = self.capture_url(watcher, name, None);
        self.arm_expect(Method::Delete, &url, None, &[200, 202, 204, 404]).map(drop)
    }
}

/// A 2xx body as JSON; an unreadable one is transient (a proxy page, a cut connection).
fn json_body(resp: &OutboundResponse, what: &str) -> Result<Value, AzureError> {
    serde_json::from_slice(&resp.body).map_err(|_| AzureError::Transient {
        detail: format!("ARM answered {} with an unreadable body for {what}", resp.status),
        retry_after_secs: None,
    })
}

/// The PUT body: `{"properties": PacketCaptureParameters}`.
fn capture_body(p: &CaptureParams) -> Value {
    let mut props = Map::new();
    props.insert("target".into(), Value::String(p.target.capture_target().to_string()));
    let target_type = match p.target {
        Target::Vm(_) => "AzureVM",
        Target::Vmss(_) | Target::VmssInstance { .. } => "AzureVMSS",
    };
    props.insert("targetType".into(), target_type.into());
    if let Target::VmssInstance { instance, .. } = &p.target {
        // Network Watcher takes scale-set instance ids ("0", "1"), the last segment of
        // …/virtualMachineScaleSets/{name}/virtualMachines/{instanceId}.
        props.insert("scope".into(), json!({ "include": [instance], "exclude": [] }));
    }
    props.insert("bytesToCapturePerPacket".into(), p.bytes_per_packet.into());
    props.insert("totalBytesPerSession".into(), p.bytes_per_session.into());
    props.insert("timeLimitInSeconds".into(), p.time_limit_seconds.into());
    let mut storage = Map::new();
    if let Some(id) = &p.storage_account_id {
        storage.insert("storageId".into(), Value::String(id.to_string()));
    }
    if let Some(path) = &p.file_path {
        storage.insert("filePath".into(), Value::String(path.clone()));
    }
    props.insert("storageLocation".into(), Value::Object(storage));
    props.insert("filters".into(), Value::Array(p.filters.clone()));
    json!({ "properties": props })
}
