//! The ARM calls: VM / scale-set GET, Network Watcher lookup (cached), packet captures.

use serde_json::{Map, Value, json};

use super::error::{AzureError, MAX_MESSAGE_CHARS, from_arm_response, from_transport, one_line, retry_after_header};
use super::model::{self, CaptureCreated, CaptureInfo, CaptureParams, CaptureStatus, VmInfo, normalize_location};
use super::{Azure, COMPUTE_API_VERSION, NETWORK_API_VERSION, USER_AGENT};
use crate::ports::{Method, OutboundRequest, OutboundResponse};
use crate::resource_id::{ResourceId, Target, arm_url};

/// Pages of the watcher list we read at most.
const MAX_WATCHER_PAGES: usize = 10;
/// Longest `nextLink` we follow (ARM's are a few hundred characters; 4 KB is the documented floor).
const MAX_NEXT_LINK: usize = 8192;
/// `Location` / `Azure-AsyncOperation` GETs at most for one `queryStatus` within one request.
pub const MAX_LRO_GETS: u32 = 2;
/// How long one request may wait for a long-running answer before following its `Location`.
/// The core cannot sleep, so only a `Retry-After` that has already passed by the World's clock
/// (absent or 0, in practice) is followed at once; a longer one is honoured by leaving the
/// answer to the next poll, which issues a fresh `queryStatus`.
pub const LRO_INLINE_WAIT_SECS: u64 = 0;

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
        if ok.contains(&resp.status) { Ok(resp) } else { Err(from_arm_response(&resp, self.world.clock.now())) }
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
        let origin = self.cfg.arm_endpoint.trim_end_matches('/');
        link.len() <= MAX_NEXT_LINK
            && !link.bytes().any(|c| c.is_ascii_control() || c == b' ' || c == b'\\')
            && link.get(..origin.len()).is_some_and(|p| p.eq_ignore_ascii_case(origin))
            && link.as_bytes().get(origin.len()) == Some(&b'/')
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

    /// PUT the packet capture `name` on `watcher`.
    ///
    /// Creating a name that already exists (an earlier attempt whose answer was lost) is not
    /// documented: ARM may answer an idempotent `201` with the existing resource, or a `409` /
    /// `400` "already exists". Either way the existing capture is checked against `params`: it is
    /// read back with one GET and adopted (`already_existed: true`) when it targets the same VM
    /// or scale set with the same parameters where ARM shows them; a capture of that name on
    /// anything else is a permanent error naming it. A `200`/`201` needs no read-back: ARM's PUT
    /// is create-or-replace, so what it accepted is our capture.
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
                // A PUT that ARM accepted replaced whatever had the name, so the resource is ours
                // now (a fresh create and an idempotent 201 alike): no read-back, no comparison.
                let value = serde_json::from_slice::<Value>(&resp.body).unwrap_or(Value::Null);
                let info = model::parse_capture(&value);
                Ok(CaptureCreated {
                    provisioning_state: info.provisioning_state,
                    storage_path: info.storage_path,
                    already_existed: false,
                })
            }
            409 | 400 => {
                let refused = from_arm_response(&resp, self.world.clock.now());
                let exists = resp.status == 409 || refused.code().is_some_and(says_already_exists);
                if refused.is_retryable() || !exists {
                    return Err(refused);
                }
                // Whether ours exists is decided by reading it, not by the (undocumented) code.
                let url = self.capture_url(watcher, name, None);
                let existing = match self.arm_expect(Method::Get, &url, None, &[200]) {
                    Ok(r) => json_body(&r, "the packet capture")?,
                    Err(AzureError::NotFound { .. }) => return Err(refused),
                    Err(other) => return Err(other),
                };
                if let Some(why) = foreign_capture(&existing, params) {
                    return Err(name_taken(name, &why));
                }
                let info = model::parse_capture(&existing);
                Ok(CaptureCreated {
                    provisioning_state: info.provisioning_state,
                    storage_path: info.storage_path,
                    already_existed: true,
                })
            }
            _ => Err(from_arm_response(&resp, self.world.clock.now())),
        }
    }

    /// POST `…/{name}/queryStatus`.
    ///
    /// `200` carries the status; so may a `202` (older answers). A `202` without it is a
    /// long-running answer: its `Location` (or, when there is none, its `Azure-AsyncOperation`)
    /// is followed with GET only on the configured ARM origin, at most [`MAX_LRO_GETS`] times,
    /// and only once its `Retry-After` has passed (see [`LRO_INLINE_WAIT_SECS`]). An operation
    /// reported `Succeeded` without the status leads to one fresh `queryStatus`. When the answer
    /// is not ready within those bounds the result is a transient error carrying the
    /// `Retry-After`: the capture stays as it is and the next poll asks again.
    pub fn query_status(&self, watcher: &ResourceId, name: &str) -> Result<CaptureStatus, AzureError> {
        let url = self.capture_url(watcher, name, Some("queryStatus"));
        let mut gets_left = MAX_LRO_GETS;
        let mut reissued = false;
        loop {
            let resp = self.arm_expect(Method::Post, &url, None, &[200, 202])?;
            if let Some(status) = status_of(&resp.body) {
                return Ok(status);
            }
            let retry_after = retry_after_header(&resp, self.world.clock.now());
            if resp.status == 200 {
                return Err(AzureError::Transient {
                    detail: "queryStatus answered 200 without a packetCaptureStatus".to_string(),
                    retry_after_secs: retry_after,
                });
            }
            match self.follow_lro(&resp, &mut gets_left)? {
                Lro::Status(status) => return Ok(status),
                // The operation finished without the status: ask once more.
                Lro::Done if !reissued => reissued = true,
                Lro::Done => return Err(not_ready("the operation finished but its result was not found", None)),
                Lro::NotReady { why, retry_after_secs } => {
                    return Err(not_ready(why, retry_after_secs.or(retry_after)));
                }
            }
        }
    }

    /// Follow a `202` of `queryStatus`: its `Location` when present, else its
    /// `Azure-AsyncOperation`, each only on the ARM origin and within `gets_left`.
    fn follow_lro(&self, accepted: &OutboundResponse, gets_left: &mut u32) -> Result<Lro, AzureError> {
        let answered_at = self.world.clock.now();
        let mut retry_after = retry_after_header(accepted, answered_at);
        let (link, is_location) = match (accepted.header("location"), accepted.header("azure-asyncoperation")) {
            (Some(l), _) => (l.trim(), true),
            (None, Some(op)) => (op.trim(), false),
            (None, None) => return Ok(Lro::not_ready("no Location to follow", None)),
        };
        if !self.on_arm_host(link) {
            // Another host, or not a URL at all: never followed, never sent our token.
            return Ok(Lro::not_ready("its Location is not on the ARM endpoint and was not followed", None));
        }
        let mut since = answered_at;
        loop {
            let now = self.world.clock.now();
            let waited = u64::try_from(now.saturating_sub(since)).unwrap_or(0);
            if retry_after.unwrap_or(0) > waited.saturating_add(LRO_INLINE_WAIT_SECS) {
                return Ok(Lro::not_ready("Azure asked to wait", retry_after));
            }
            if *gets_left == 0 {
                return Ok(Lro::not_ready("still running after the GETs one request allows", retry_after));
            }
            *gets_left -= 1;
            let resp = match self.arm_expect(Method::Get, link, None, &[200, 202]) {
                Ok(r) => r,
                // An operation URL that is gone says nothing about the capture: ask again later.
                Err(AzureError::NotFound { .. }) => {
                    return Ok(Lro::not_ready("the operation URL answered 404", None));
                }
                Err(e) => return Err(e),
            };
            since = self.world.clock.now();
            retry_after = retry_after_header(&resp, since);
            if resp.status == 202 {
                continue;
            }
            if is_location {
                return match status_of(&resp.body) {
                    Some(status) => Ok(Lro::Status(status)),
                    None => Err(AzureError::Transient {
                        detail: "the queryStatus result (Location) has no packetCaptureStatus".to_string(),
                        retry_after_secs: retry_after,
                    }),
                };
            }
            let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            match model::str_at(&body, &["status"]).unwrap_or("") {
                s if s.eq_ignore_ascii_case("Succeeded") => {
                    // Some operations carry their result; otherwise the caller asks again.
                    let result = body.get("properties").filter(|p| p.is_object()).unwrap_or(&body);
                    return Ok(model::parse_status(result).map_or(Lro::Done, Lro::Status));
                }
                s if s.eq_ignore_ascii_case("Failed") || s.eq_ignore_ascii_case("Canceled") => {
                    let err = body.get("error").unwrap_or(&Value::Null);
                    let code = model::str_at(err, &["code"]).unwrap_or(s);
                    let message = model::str_at(err, &["message"]).unwrap_or("");
                    return Err(AzureError::Transient {
                        detail: one_line(
                            &format!("the queryStatus operation ended {s} ({code}): {message}"),
                            MAX_MESSAGE_CHARS,
                        ),
                        retry_after_secs: retry_after,
                    });
                }
                // InProgress, or any other value: not yet.
                _ => continue,
            }
        }
    }

    /// GET `…/{name}`: provisioning state and where the file goes.
    pub fn get_capture(&self, watcher: &ResourceId, name: &str) -> Result<CaptureInfo, AzureError> {
        let url = self.capture_url(watcher, name, None);
        let resp = self.arm_expect(Method::Get, &url, None, &[200])?;
        Ok(model::parse_capture(&json_body(&resp, "the packet capture")?))
    }

    /// POST `…/{name}/stop` (200, or 202 accepted). Nothing is followed: the capture's final
    /// state is learned from later `queryStatus` calls.
    pub fn stop_capture(&self, watcher: &ResourceId, name: &str) -> Result<(), AzureError> {
        let url = self.capture_url(watcher, name, Some("stop"));
        self.arm_expect(Method::Post, &url, None, &[200, 202]).map(drop)
    }

    /// DELETE `…/{name}` (200/202/204; 404 also fine: already gone). A 202's `Location` and
    /// `Azure-AsyncOperation` are not followed: nothing waits on the deletion.
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

/// Where a long-running `queryStatus` stands after following it.
enum Lro {
    /// The status, from the `Location` (or the operation's result).
    Status(CaptureStatus),
    /// The operation succeeded without carrying the status: issue `queryStatus` again.
    Done,
    /// Not known within this request's bounds.
    NotReady { why: &'static str, retry_after_secs: Option<u64> },
}

impl Lro {
    fn not_ready(why: &'static str, retry_after_secs: Option<u64>) -> Self {
        Lro::NotReady { why, retry_after_secs }
    }
}

/// The capture's status is not known yet: retry later (the capture itself is unaffected).
fn not_ready(why: &str, retry_after_secs: Option<u64>) -> AzureError {
    AzureError::Transient {
        detail: format!("queryStatus accepted (202) but not answered yet: {why}"),
        retry_after_secs,
    }
}

fn status_of(body: &[u8]) -> Option<CaptureStatus> {
    serde_json::from_slice::<Value>(body).ok().as_ref().and_then(model::parse_status)
}

/// ARM codes for "that name is taken" on a 400 (409 always counts).
fn says_already_exists(code: &str) -> bool {
    let c = code.to_ascii_lowercase();
    c.ends_with("alreadyexists") || c == "conflict" || c == "resourceexists"
}

fn name_taken(name: &str, why: &str) -> AzureError {
    AzureError::Permanent {
        status: 409,
        code: "PacketCaptureNameTaken".to_string(),
        message: one_line(
            &format!(
                "a packet capture named {name} already exists on this Network Watcher for something else ({why}); delete it or change capture_name_prefix"
            ),
            MAX_MESSAGE_CHARS,
        ),
    }
}

/// Why an existing capture body is not the capture `p` would create, or `None` when it is (or
/// the body does not say). Fields ARM does not show are not compared; ids without case.
fn foreign_capture(body: &Value, p: &CaptureParams) -> Option<String> {
    let props = body.get("properties")?;
    if let Some(target) = model::str_at(props, &["target"]) {
        let ours = p.target.capture_target().normalized();
        let same = ResourceId::parse(target).map(|t| t.normalized() == ours).unwrap_or(false);
        if !same {
            return Some(format!("it targets {}", one_line(target, 300)));
        }
    }
    if let Some(kind) = model::str_at(props, &["targetType"]) {
        let ours = match p.target {
            Target::Vm(_) => "AzureVM",
            Target::Vmss(_) | Target::VmssInstance { .. } => "AzureVMSS",
        };
        if !kind.eq_ignore_ascii_case(ours) {
            return Some(format!("its targetType is {}", one_line(kind, 40)));
        }
    }
    // Scale sets: the instances included must be ours (none listed: the whole set).
    if let Some(include) = props.pointer("/scope/include").and_then(Value::as_array) {
        let theirs: Vec<String> =
            include.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).collect();
        let ours: Vec<String> = match &p.target {
            Target::VmssInstance { instance, .. } => vec![instance.clone()],
            _ => Vec::new(),
        };
        if theirs != ours {
            return Some(format!("its scope includes {theirs:?}"));
        }
    } else if matches!(p.target, Target::VmssInstance { .. }) && props.get("scope").is_some() {
        return Some("its scope is the whole scale set".to_string());
    }
    let numbers = [
        ("timeLimitInSeconds", u64::from(p.time_limit_seconds)),
        ("totalBytesPerSession", p.bytes_per_session),
        ("bytesToCapturePerPacket", p.bytes_per_packet),
    ];
    for (field, ours) in numbers {
        if let Some(theirs) = props.get(field).and_then(Value::as_u64)
            && theirs != ours
        {
            return Some(format!("its {field} is {theirs}, ours {ours}"));
        }
    }
    if let (Some(theirs), Some(ours)) = (model::str_at(props, &["storageLocation", "storageId"]), &p.storage_account_id)
        && !theirs.eq_ignore_ascii_case(&ours.to_string())
    {
        return Some(format!("it writes to {}", one_line(theirs, 300)));
    }
    None
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
