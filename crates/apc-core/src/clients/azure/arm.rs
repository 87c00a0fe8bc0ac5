//! The ARM calls: VM / scale-set GET, Network Watcher lookup (cached), packet captures.

use serde_json::{Map, Value, json};

use super::error::{AzureError, MAX_MESSAGE_CHARS, from_arm_response, from_transport, one_line, retry_after_header};
use super::model::{self, CaptureCreated, CaptureInfo, CaptureParams, CaptureStatus, VmInfo, normalize_location};
use super::operation::{OperationKind, OperationPoll, OperationUrl, StatusOutcome, on_origin};
use super::{Azure, COMPUTE_API_VERSION, NETWORK_API_VERSION, USER_AGENT};
use crate::domain::resource_id::{ResourceId, Target, arm_url};
use crate::ports::{Method, OutboundRequest, OutboundResponse};

/// Pages of the watcher list we read at most.
const MAX_WATCHER_PAGES: usize = 10;
/// `Location` / `Azure-AsyncOperation` GETs at most for one `queryStatus` within one request.
pub const MAX_LRO_GETS: u32 = 2;
/// How long one request may wait for a long-running answer before following its `Location`.
/// The core cannot sleep, so only a `Retry-After` that has already passed by the World's clock
/// (absent or 0, in practice) is followed at once; a longer one is honoured by handing the
/// operation back ([`StatusOutcome::Pending`]) for a later request to ask.
pub const LRO_INLINE_WAIT_SECS: u64 = 0;

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
    /// subscription's watcher list (every region found is cached, in one write).
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
        let mut cached: Vec<(String, ResourceId)> = Vec::new();
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
                if cached.iter().any(|(l, _)| *l == item_loc) {
                    continue; // one watcher per region; keep the first
                }
                if item_loc == loc {
                    found = Some(id.clone());
                }
                cached.push((item_loc, id));
            }
            if found.is_some() {
                break;
            }
            match model::str_at(&body, &["nextLink"]) {
                Some(next) if self.on_arm_host(next) => url = next.to_string(),
                _ => break,
            }
        }
        if !cached.is_empty() {
            self.update_cache(|c| {
                for (l, id) in cached {
                    c.set_watcher(&sub, &l, id.to_string());
                }
                true
            });
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
        let (sub, loc) = (subscription.to_ascii_lowercase(), normalize_location(location));
        // A failed write leaves a stale entry; the next 404 comes back here.
        self.update_cache(|c| c.forget_watcher(&sub, &loc));
    }

    fn cached_watcher(&self, sub: &str, loc: &str) -> Option<ResourceId> {
        let id = self.with_cache(|c| c.watcher(sub, loc).map(str::to_string))?;
        ResourceId::parse(&id).ok().filter(|id| id.is_type("Microsoft.Network", &["networkWatchers"]))
    }

    /// True when `link` is on the configured ARM scheme, host and port (and looks like a URL).
    fn on_arm_host(&self, link: &str) -> bool {
        on_origin(link, &self.cfg.arm_endpoint)
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
    /// must be on the configured ARM origin ([`OperationUrl`]), else the answer is a transient
    /// error and nothing is followed. When the `202` asks to wait (`Retry-After` not yet passed
    /// by the World's clock; the core cannot sleep), the result is
    /// [`StatusOutcome::Pending`] with the operation, for the caller to keep and ask with
    /// [`Self::poll_status_operation`] later. Otherwise the operation is followed at once, at
    /// most [`MAX_LRO_GETS`] times per call, and is `Pending` again if still running then. An
    /// operation reported `Succeeded` without the status leads to one fresh `queryStatus`; one
    /// that failed, or whose URL is gone, is a transient error.
    pub fn query_status(&self, watcher: &ResourceId, name: &str) -> Result<StatusOutcome, AzureError> {
        let url = self.capture_url(watcher, name, Some("queryStatus"));
        let mut gets_left = MAX_LRO_GETS;
        let mut reissued = false;
        loop {
            let resp = self.arm_expect(Method::Post, &url, None, &[200, 202])?;
            if let Some(status) = status_of(&resp.body) {
                return Ok(StatusOutcome::Known(status));
            }
            let mut since = self.world.clock.now();
            let mut retry_after = retry_after_header(&resp, since);
            if resp.status == 200 {
                return Err(AzureError::Transient {
                    detail: "queryStatus answered 200 without a packetCaptureStatus".to_string(),
                    retry_after_secs: retry_after,
                });
            }
            let (operation, kind) = self.operation_of(&resp, retry_after)?;
            loop {
                let now = self.world.clock.now();
                let waited = u64::try_from(now.saturating_sub(since)).unwrap_or(0);
                let wait = retry_after.unwrap_or(0);
                if wait > waited.saturating_add(LRO_INLINE_WAIT_SECS) || gets_left == 0 {
                    let retry_after_secs = retry_after.map(|r| r.saturating_sub(waited));
                    return Ok(StatusOutcome::Pending { operation, kind, retry_after_secs });
                }
                gets_left -= 1;
                match self.poll_status_operation(&operation, kind)? {
                    OperationPoll::Known(status) => return Ok(StatusOutcome::Known(status)),
                    OperationPoll::Running { retry_after_secs } => {
                        since = self.world.clock.now();
                        retry_after = retry_after_secs;
                    }
                    // The operation finished without the status: ask once more.
                    OperationPoll::Done if !reissued => {
                        reissued = true;
                        break;
                    }
                    OperationPoll::Done => {
                        return Err(not_ready("the operation finished but its result was not found", None));
                    }
                    OperationPoll::Ended { why } => {
                        return Err(AzureError::Transient { detail: why, retry_after_secs: None });
                    }
                }
            }
        }
    }

    /// The operation a `202` of `queryStatus` points at: its `Location` when present, else its
    /// `Azure-AsyncOperation`; an error (carrying the `202`'s `retry_after`) when there is none
    /// or it is not on the ARM origin.
    fn operation_of(
        &self,
        accepted: &OutboundResponse,
        retry_after: Option<u64>,
    ) -> Result<(OperationUrl, OperationKind), AzureError> {
        let (link, kind) = match (accepted.header("location"), accepted.header("azure-asyncoperation")) {
            (Some(l), _) => (l, OperationKind::Location),
            (None, Some(op)) => (op, OperationKind::AsyncOperation),
            (None, None) => return Err(not_ready("no Location to follow", retry_after)),
        };
        match OperationUrl::parse(link, &self.cfg.arm_endpoint) {
            Some(url) => Ok((url, kind)),
            // Another host, or not a URL at all: never followed, never sent our token, not echoed.
            None => Err(not_ready("its Location is not on the ARM endpoint and was not followed", retry_after)),
        }
    }

    /// One `GET` of a `queryStatus` operation URL (from [`StatusOutcome::Pending`], or kept
    /// in a record and parsed again). The URL is checked against the configured origin once
    /// more, so one made under another configuration is refused without a call.
    ///
    /// `200`/`202` and the operation's own `status` are read per `kind`; `404`/`410`, an
    /// operation `Failed`/`Canceled`, and any other error answer from the operation URL end it
    /// ([`OperationPoll::Ended`]). A throttle, a `401`/`403` refusal or a transport failure is
    /// an error: the operation may still be asked later, and a refusal is shown.
    pub fn poll_status_operation(
        &self,
        operation: &OperationUrl,
        kind: OperationKind,
    ) -> Result<OperationPoll, AzureError> {
        if !on_origin(operation.as_str(), &self.cfg.arm_endpoint) {
            return Ok(OperationPoll::Ended { why: "the operation URL is not on the ARM endpoint".to_string() });
        }
        let resp = self.arm_send(Method::Get, operation.as_str(), None)?;
        let now = self.world.clock.now();
        let retry_after = retry_after_header(&resp, now);
        match resp.status {
            202 => return Ok(OperationPoll::Running { retry_after_secs: retry_after }),
            200 => {}
            404 | 410 => {
                return Ok(OperationPoll::Ended {
                    why: format!(
                        "queryStatus accepted (202) but not answered yet: the operation URL answered {}",
                        resp.status
                    ),
                });
            }
            _ => {
                let err = from_arm_response(&resp, now);
                // A throttle says nothing about the operation; a refusal (a role without the
                // operation-read actions, say) must reach the record, not be asked around.
                if matches!(err, AzureError::Throttled { .. }) || matches!(resp.status, 401 | 403) {
                    return Err(err);
                }
                // A Location answers with the operation's own final status: it failed.
                return Ok(OperationPoll::Ended {
                    why: format!("the queryStatus operation failed: {}", err.summary()),
                });
            }
        }
        let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        if kind == OperationKind::Location {
            return Ok(match model::parse_status(&body) {
                Some(status) => OperationPoll::Known(status),
                None => OperationPoll::Ended {
                    why: "the queryStatus result (Location) has no packetCaptureStatus".to_string(),
                },
            });
        }
        Ok(match model::str_at(&body, &["status"]).unwrap_or("") {
            s if s.eq_ignore_ascii_case("Succeeded") => {
                // Some operations carry their result; otherwise the caller asks again.
                let result = body.get("properties").filter(|p| p.is_object()).unwrap_or(&body);
                model::parse_status(result).map_or(OperationPoll::Done, OperationPoll::Known)
            }
            s if s.eq_ignore_ascii_case("Failed") || s.eq_ignore_ascii_case("Canceled") => {
                let err = body.get("error").unwrap_or(&Value::Null);
                let code = model::str_at(err, &["code"]).unwrap_or(s);
                let message = model::str_at(err, &["message"]).unwrap_or("");
                OperationPoll::Ended {
                    why: one_line(
                        &format!("the queryStatus operation ended {s} ({code}): {message}"),
                        MAX_MESSAGE_CHARS,
                    ),
                }
            }
            // InProgress, or any other value: not yet.
            _ => OperationPoll::Running { retry_after_secs: retry_after },
        })
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
