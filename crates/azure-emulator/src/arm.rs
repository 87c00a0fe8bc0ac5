//! Azure Resource Manager: authentication, api-version, VM GET, watcher list, packet captures
//! (shapes from `testdata/azure-samples/{compute,network-watcher,arm}/`).

use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};

use crate::http::{Request, Response};
use crate::model::{ArmId, Capture, State, normalize_location};
use crate::{Inner, OsType, Route, routes};

/// Oldest Compute api-version accepted for VM GET (SPEC §4).
const MIN_COMPUTE_API: &str = "2025-04-01";
/// Oldest Network api-version accepted (SPEC §4).
const MIN_NETWORK_API: &str = "2025-07-01";
/// api-version put in the URLs the emulator hands out.
const NETWORK_API: &str = "2025-07-01";
/// `Retry-After` of long-running operations, seconds.
const LRO_RETRY_AFTER: &str = "10";

/// ARM's error body `{"error":{"code","message"}}`.
pub(crate) fn error(status: u16, code: &str, message: &str) -> Response {
    Response::json(status, &json!({"error": {"code": code, "message": message}}))
}

/// A path no route knows.
pub(crate) fn not_found_route(req: &Request) -> Response {
    error(404, "NoRegisteredProviderFound", &format!("The emulator has no route for {} {}.", req.method, req.path))
}

pub(crate) fn handle(inner: &Inner, route: &Route, req: &Request) -> Response {
    if let Some(denied) = authenticate(inner, req) {
        return denied;
    }
    let min = match route {
        Route::VmGet { .. } => Some(MIN_COMPUTE_API),
        Route::AsyncOperation { .. } | Route::OperationResult { .. } => None,
        _ => Some(MIN_NETWORK_API),
    };
    if let Some(bad) = check_api_version(req, min) {
        return bad;
    }
    let mut st = inner.lock();
    let host = st.settings.hostile_base.clone().unwrap_or_else(|| inner.base().to_string());
    match route {
        Route::VmGet { sub, rg, vm } => vm_get(&st, sub, rg, vm),
        Route::WatchersList { sub } => watchers_list(&st, sub, &host),
        Route::CaptureList { sub, rg, nw } => capture_list(&st, sub, rg, nw, &host),
        Route::Capture { op, sub, rg, nw, name } => {
            let key = capture_key(sub, rg, nw, name);
            match *op {
                routes::CAPTURE_PUT => capture_put(&mut st, &host, (sub, rg, nw, name), req),
                routes::CAPTURE_GET => match st.captures.get(&key) {
                    Some(c) => Response::json(200, &resource_body(c, props_for_get(c))),
                    None => capture_not_found(rg, nw, name),
                },
                routes::CAPTURE_DELETE => match st.captures.remove(&key) {
                    Some(c) => {
                        let op_id = st.guid();
                        Response::empty(202)
                            .with_header(
                                "Location",
                                format!(
                                    "{host}/subscriptions/{}/providers/Microsoft.Network/locations/{}/operationResults/{op_id}?api-version={NETWORK_API}",
                                    c.subscription, c.location
                                ),
                            )
                            .with_header("Retry-After", LRO_RETRY_AFTER)
                    }
                    None => Response::empty(204),
                },
                routes::CAPTURE_STATUS => {
                    let now = st.now();
                    match st.captures.get(&key) {
                        Some(c) => Response::json(200, &query_status(c, now)),
                        None => capture_not_found(rg, nw, name),
                    }
                }
                _ => {
                    let now = st.now();
                    match st.captures.get_mut(&key) {
                        Some(c) => {
                            if c.status_at(now).status != "Stopped" && !c.error {
                                c.stopped = Some(now);
                            }
                            Response::empty(200)
                        }
                        None => capture_not_found(rg, nw, name),
                    }
                }
            }
        }
        Route::AsyncOperation { .. } => {
            let start = fmt_time(st.now());
            Response::json(200, &json!({"status": "Succeeded", "startTime": start}))
        }
        Route::OperationResult { .. } => Response::empty(204),
        Route::Token { .. } | Route::Unknown => not_found_route(req),
    }
}

fn authenticate(inner: &Inner, req: &Request) -> Option<Response> {
    let challenge = |desc: &str| {
        format!(
            "Bearer authorization_uri=\"{}/{}\", error=\"invalid_token\", error_description=\"{desc}\"",
            inner.base(),
            inner.lock().settings.config.tenant_id
        )
    };
    let Some(header) = req.header("authorization") else {
        return Some(
            error(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
                .with_header(
                    "WWW-Authenticate",
                    challenge("The authentication failed because of missing 'Authorization' header."),
                ),
        );
    };
    let token = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).map(str::trim).unwrap_or("");
    let (expiry, now) = {
        let st = inner.lock();
        (st.tokens.get(token).copied(), st.now())
    };
    match expiry {
        Some(exp) if now < exp => None,
        Some(exp) => Some(
            error(
                401,
                "ExpiredAuthenticationToken",
                &format!(
                    "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                    fmt_time(exp),
                    fmt_time(now)
                ),
            )
            .with_header("WWW-Authenticate", challenge("The access token has expired.")),
        ),
        None => Some(
            error(401, "InvalidAuthenticationToken", "The access token is invalid.")
                .with_header("WWW-Authenticate", challenge("The access token is invalid.")),
        ),
    }
}

/// Checks `api-version`: present, shaped `YYYY-MM-DD[-preview]`, and not older than `min`.
fn check_api_version(req: &Request, min: Option<&str>) -> Option<Response> {
    let Some(v) = req.query_param("api-version") else {
        return Some(error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    };
    let date = v.strip_suffix("-preview").unwrap_or(&v);
    let shaped = date.len() == 10
        && date.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    if !shaped {
        return Some(error(
            400,
            "InvalidApiVersionParameter",
            &format!("The api-version '{v}' is invalid. The supported versions are in 'YYYY-MM-DD' format."),
        ));
    }
    if let Some(min) = min
        && date < min
    {
        return Some(error(
            400,
            "NoRegisteredProviderFound",
            &format!(
                "No registered resource provider found for API version '{v}'. The emulator supports api-versions '{min}' and newer."
            ),
        ));
    }
    None
}

pub(crate) fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn vm_get(st: &State, sub: &str, rg: &str, name: &str) -> Response {
    let key = format!("/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.compute/virtualmachines/{name}")
        .to_ascii_lowercase();
    let Some(vm) = st.vms.get(&key) else {
        return error(
            404,
            "ResourceNotFound",
            &format!(
                "The Resource 'Microsoft.Compute/virtualMachines/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
        );
    };
    let id = vm.id.canonical();
    let rg_prefix = format!("/subscriptions/{}/resourceGroups/{}/providers", vm.id.subscription, vm.id.resource_group);
    let (os, agent_type, os_config) = match vm.os_type {
        OsType::Linux => (
            "Linux",
            "NetworkWatcherAgentLinux",
            json!({"linuxConfiguration": {"disablePasswordAuthentication": true, "provisionVMAgent": true}}),
        ),
        OsType::Windows => (
            "Windows",
            "NetworkWatcherAgentWindows",
            json!({"windowsConfiguration": {"provisionVMAgent": true, "enableAutomaticUpdates": true}}),
        ),
    };
    let mut os_profile = json!({"computerName": vm.id.name, "adminUsername": "azureuser", "secrets": []});
    if let (Some(p), Some(extra)) = (os_profile.as_object_mut(), os_config.as_object()) {
        p.extend(extra.clone());
    }
    let mut body = json!({
        "name": vm.id.name,
        "id": id,
        "type": "Microsoft.Compute/virtualMachines",
        "location": vm.location,
        "tags": {},
        "properties": {
            "vmId": vm.vm_uuid,
            "hardwareProfile": {"vmSize": "Standard_D2s_v3"},
            "storageProfile": {
                "osDisk": {
                    "osType": os,
                    "name": format!("{}_OsDisk_1", vm.id.name),
                    "createOption": "FromImage",
                    "caching": "ReadWrite",
                    "managedDisk": {
                        "storageAccountType": "Premium_LRS",
                        "id": format!("{rg_prefix}/Microsoft.Compute/disks/{}_OsDisk_1", vm.id.name)
                    },
                    "diskSizeGB": 30
                },
                "dataDisks": []
            },
            "osProfile": os_profile,
            "networkProfile": {"networkInterfaces": [
                {"id": format!("{rg_prefix}/Microsoft.Network/networkInterfaces/{}-nic", vm.id.name)}
            ]},
            "provisioningState": "Succeeded",
            "timeCreated": "2025-01-01T00:00:00.0000000+00:00"
        }
    });
    // Real ARM leaves `resources` out when the VM has no extensions.
    if vm.agent
        && let Some(obj) = body.as_object_mut()
    {
        obj.insert(
            "resources".into(),
            json!([{
                "name": "AzureNetworkWatcherExtension",
                "id": format!("{id}/extensions/AzureNetworkWatcherExtension"),
                "type": "Microsoft.Compute/virtualMachines/extensions",
                "location": vm.location,
                "properties": {
                    "autoUpgradeMinorVersion": true,
                    "provisioningState": "Succeeded",
                    "publisher": "Microsoft.Azure.NetworkWatcher",
                    "type": agent_type,
                    "typeHandlerVersion": "1.4"
                }
            }]),
        );
    }
    Response::json(200, &body)
}

fn watchers_list(st: &State, sub: &str, host: &str) -> Response {
    let value: Vec<Value> = st
        .watchers
        .values()
        .filter(|w| w.id.subscription.eq_ignore_ascii_case(sub))
        .map(|w| {
            json!({
                "name": w.id.name,
                "type": "Microsoft.Network/networkWatchers",
                "etag": "W/\"00000000-0000-0000-0000-000000000000\"",
                "id": w.id.canonical(),
                "location": w.location,
                "properties": {"provisioningState": "Succeeded"},
                "tags": {}
            })
        })
        .collect();
    Response::json(
        200,
        &list_body(st, value, host, &format!("/subscriptions/{sub}/providers/Microsoft.Network/networkWatchers")),
    )
}

/// `{"value":[…]}`, plus a `nextLink` to the hostile host when one is set.
fn list_body(st: &State, value: Vec<Value>, host: &str, path: &str) -> Value {
    let mut body = json!({ "value": value });
    if st.settings.hostile_base.is_some()
        && let Some(obj) = body.as_object_mut()
    {
        obj.insert("nextLink".into(), json!(format!("{host}{path}?api-version={NETWORK_API}&$skiptoken=1")));
    }
    body
}

fn capture_key(sub: &str, rg: &str, nw: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.network/networkwatchers/{nw}/packetcaptures/{name}"
    )
    .to_ascii_lowercase()
}

fn capture_not_found(rg: &str, nw: &str, name: &str) -> Response {
    error(
        404,
        "ResourceNotFound",
        &format!(
            "The Resource 'Microsoft.Network/networkWatchers/{nw}/packetCaptures/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

fn capture_list(st: &State, sub: &str, rg: &str, nw: &str, host: &str) -> Response {
    let prefix = format!("{}/", capture_key(sub, rg, nw, "")).replace("//", "/");
    let prefix = prefix.trim_end_matches('/').to_string() + "/";
    let value: Vec<Value> = st
        .captures
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(_, c)| resource_body(c, props_for_get(c)))
        .collect();
    let path = format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/networkWatchers/{nw}/packetCaptures"
    );
    Response::json(200, &list_body(st, value, host, &path))
}

fn resource_body(c: &Capture, props: Value) -> Value {
    json!({
        "name": c.name,
        "id": c.id,
        "etag": c.etag,
        "properties": props,
    })
}

/// `properties` as GET answers them: creation is over, so `Succeeded`.
pub(crate) fn props_for_get(c: &Capture) -> Value {
    let mut p = c.props.clone();
    if let Some(obj) = p.as_object_mut() {
        obj.insert("provisioningState".into(), json!("Succeeded"));
    }
    p
}

fn query_status(c: &Capture, now: OffsetDateTime) -> Value {
    let s = c.status_at(now);
    let started = if s.status == "NotStarted" { c.created_at } else { c.start_at };
    let mut body = json!({
        "name": c.name,
        "id": c.id,
        "captureStartTime": fmt_time(started),
        "packetCaptureStatus": s.status,
        "packetCaptureError": s.errors,
    });
    if let (Some(reason), Some(obj)) = (s.stop_reason, body.as_object_mut()) {
        obj.insert("stopReason".into(), json!(reason));
    }
    body
}

fn bad(code: &str, message: impl AsRef<str>) -> Response {
    error(400, code, message.as_ref())
}

/// Network RP name rule: 1–80 characters of letters, digits, `_`, `.`, `-`; starts with a
/// letter or digit; ends with a letter, digit or `_`.
fn valid_name(name: &str) -> bool {
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let last_ok = name.chars().last().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    !name.is_empty() && name.len() <= 80 && ok_chars && first_ok && last_ok
}

/// Reads an optional integer property within `0..=max`.
fn int_prop(props: &Map<String, Value>, name: &str, max: u64) -> Result<Option<u64>, Response> {
    match props.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let out_of_range =
                || bad("InvalidRequestFormat", format!("The value of '{name}' must be between 0 and {max}."));
            match (v.as_u64(), v.as_i64()) {
                (Some(n), _) if n <= max => Ok(Some(n)),
                (Some(_), _) | (None, Some(_)) => Err(out_of_range()),
                _ => {
                    Err(bad("InvalidRequestFormat", format!("Cannot parse the request: '{name}' must be an integer.")))
                }
            }
        }
    }
}

fn str_prop<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    obj.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Port filter text: `80`, `80-85`, `80;443;`.
fn valid_ports(text: &str) -> bool {
    let one = |p: &str| p.parse::<u16>().is_ok();
    let items: Vec<&str> = text.split(';').filter(|s| !s.is_empty()).collect();
    !items.is_empty()
        && items.iter().all(|item| match item.split_once('-') {
            Some((a, b)) => items.len() == 1 && one(a) && one(b),
            None => one(item),
        })
}

type CaptureAt<'a> = (&'a str, &'a str, &'a str, &'a str);

/// `PUT …/packetCaptures/{name}`. A PUT for an existing name: see the comment inside.
fn capture_put(st: &mut State, host: &str, at: CaptureAt<'_>, req: &Request) -> Response {
    let (sub, rg, nw, name) = at;
    if !valid_name(name) {
        return bad(
            "InvalidResourceName",
            format!(
                "Resource name {name} is invalid. The name can be up to 80 characters long. It must begin with a word character, and it must end with a word character or with '_'. The name may contain word characters or '.', '-', '_'."
            ),
        );
    }
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => {
            return bad("InvalidRequestFormat", format!("Cannot parse the request. {e}"));
        }
    };
    let Some(props) = body.get("properties").and_then(Value::as_object) else {
        return bad("InvalidRequestFormat", "Cannot parse the request: 'properties' is required.");
    };
    let watcher_key =
        format!("/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.network/networkwatchers/{nw}")
            .to_ascii_lowercase();
    let Some(watcher) = st.watchers.get(&watcher_key).cloned() else {
        return error(
            404,
            "ParentResourceNotFound",
            &format!("Can not perform requested operation on nested resource. Parent resource '{nw}' not found."),
        );
    };

    // Existing name. Real ARM/Network RP behaviour could not be confirmed from public
    // sources: the specs list only 201 for PacketCaptures_Create, and azure-cli issue #7748
    // ("A lot of exception came when customer try to create new packet capture if packet
    // capture already exists") only says that re-creating fails. So: the same body again is
    // answered 201 with the existing resource (idempotent, so a lost answer can be retried);
    // a different body is a 409 conflict.
    let key = capture_key(sub, rg, nw, name);
    if let Some(existing) = st.captures.get(&key) {
        if existing.request_props == Value::Object(props.clone()) {
            return created(st, host, existing.clone());
        }
        return error(
            409,
            "PacketCaptureAlreadyExists",
            &format!(
                "Packet capture '{name}' already exists on network watcher '{nw}' with different parameters. Delete it or use another name."
            ),
        );
    }

    let Some(target) = str_prop(props, "target") else {
        return bad("InvalidRequestFormat", "Cannot parse the request: 'properties.target' is required.");
    };
    let Some(storage) = props.get("storageLocation").and_then(Value::as_object) else {
        return bad("InvalidRequestFormat", "Cannot parse the request: 'properties.storageLocation' is required.");
    };
    let bytes_per_packet = match int_prop(props, "bytesToCapturePerPacket", 4_294_967_295) {
        Ok(v) => v.unwrap_or(0),
        Err(r) => return r,
    };
    let bytes_per_session = match int_prop(props, "totalBytesPerSession", 4_294_967_295) {
        Ok(v) => v.unwrap_or(1_073_741_824),
        Err(r) => return r,
    };
    let time_limit = match int_prop(props, "timeLimitInSeconds", 18_000) {
        Ok(v) => v.unwrap_or(18_000),
        Err(r) => return r,
    };
    let target_type = props.get("targetType").and_then(Value::as_str).unwrap_or("AzureVM");
    let want_vmss = if target_type.eq_ignore_ascii_case("AzureVM") {
        false
    } else if target_type.eq_ignore_ascii_case("AzureVMSS") {
        true
    } else {
        return bad(
            "InvalidRequestFormat",
            format!("Invalid targetType '{target_type}'. Allowed values: AzureVM, AzureVMSS."),
        );
    };
    if let Some(filters) = props.get("filters") {
        let Some(list) = filters.as_array() else {
            return bad("InvalidRequestFormat", "'filters' must be an array.");
        };
        for f in list {
            let Some(f) = f.as_object() else {
                return bad("InvalidRequestFormat", "Each filter must be an object.");
            };
            if let Some(p) = f.get("protocol") {
                let ok = p.as_str().is_some_and(|p| ["TCP", "UDP", "Any"].iter().any(|a| a.eq_ignore_ascii_case(p)));
                if !ok {
                    return bad(
                        "InvalidPacketCaptureFilterProtocol",
                        format!("Filter protocol {p} is invalid. Allowed values: TCP, UDP, Any."),
                    );
                }
            }
            for port in ["localPort", "remotePort"] {
                if let Some(p) = f.get(port)
                    && !p.as_str().is_some_and(valid_ports)
                {
                    return bad(
                        "InvalidPacketCaptureFilterPort",
                        format!("Filter {port} {p} is invalid. Use a port, a range '80-85' or a list '80;443;'."),
                    );
                }
            }
        }
    }
    let storage_id = str_prop(storage, "storageId");
    let file_path = str_prop(storage, "filePath").or_else(|| str_prop(storage, "localPath"));
    if storage_id.is_none() && file_path.is_none() {
        return bad(
            "InvalidRequestFormat",
            "storageLocation.storageId is required when neither filePath nor localPath is given.",
        );
    }
    let account = match storage_id {
        None => None,
        Some(sid) => match ArmId::parse(sid) {
            Some(a)
                if a.namespace.eq_ignore_ascii_case("Microsoft.Storage")
                    && a.kind.eq_ignore_ascii_case("storageAccounts") =>
            {
                Some(a.name.to_ascii_lowercase())
            }
            _ => {
                return bad("InvalidStorageId", format!("Storage id {sid} is not a valid storage account id."));
            }
        },
    };
    if props.get("continuousCapture").is_some_and(Value::is_boolean) && str_prop(storage, "filePath").is_some() {
        return bad(
            "InvalidRequestFormat",
            "storageLocation.filePath is invalid when continuousCapture is set; use localPath.",
        );
    }

    let Some(target_id) = ArmId::parse(target) else {
        return bad("InvalidTargetResourceId", format!("Target {target} is not a valid resource id."));
    };
    let vm = st.vms.get(&target_id.key()).cloned();
    let Some(vm) = vm.filter(|v| v.scale_set == want_vmss) else {
        return bad("InvalidTargetResource", format!("Target resource {target} of type {target_type} was not found."));
    };
    if vm.location != watcher.location {
        return bad(
            "NetworkWatcherAndTargetLocationMismatch",
            format!(
                "Network watcher {nw} is in region {} but target {} is in region {}. Use the network watcher of the target's region.",
                watcher.location, vm.id.name, vm.location
            ),
        );
    }
    if !vm.agent {
        return bad(
            "NetworkWatcherExtensionNotInstalled",
            format!("The Network Watcher agent extension is not installed on {}.", vm.id.name),
        );
    }
    if vm.os_type == OsType::Linux
        && let Some(path) = file_path
        && !path.starts_with("/var/captures")
    {
        return bad(
            "InvalidFilePath",
            format!("Local path {path} is invalid: on Linux it must start with /var/captures."),
        );
    }

    // Valid: build the answered properties.
    let now = st.now();
    let mut out = props.clone();
    out.insert("bytesToCapturePerPacket".into(), json!(bytes_per_packet));
    out.insert("totalBytesPerSession".into(), json!(bytes_per_session));
    out.insert("timeLimitInSeconds".into(), json!(time_limit));
    out.entry("filters").or_insert_with(|| json!([]));
    if let Some(account) = account {
        let mut loc = storage.clone();
        loc.insert("storagePath".into(), json!(storage_path(&account, &vm.id, now)));
        out.insert("storageLocation".into(), Value::Object(loc));
    }
    let delay = st.settings.config.capture_start_delay_secs;
    let mut error_now = st.fail_names.contains(&name.to_ascii_lowercase());
    if st.fail_next > 0 {
        st.fail_next -= 1;
        error_now = true;
    }
    let mut hang = st.hang_names.contains(&name.to_ascii_lowercase());
    if st.hang_next > 0 {
        st.hang_next -= 1;
        hang = true;
    }
    let etag = format!("W/\"{}\"", st.guid());
    let capture = Capture {
        id: format!(
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/networkWatchers/{nw}/packetCaptures/{name}"
        ),
        name: name.to_string(),
        subscription: sub.to_string(),
        location: normalize_location(&watcher.location),
        request_props: Value::Object(props.clone()),
        props: Value::Object(out),
        etag,
        created_at: now,
        start_at: now.saturating_add(Duration::seconds(i64::try_from(delay).unwrap_or(i64::MAX))),
        time_limit_secs: i64::try_from(time_limit).unwrap_or(18_000),
        stopped: None,
        error: error_now,
        hang,
    };
    st.captures.insert(key, capture.clone());
    created(st, host, capture)
}

/// The `201` answer of a capture PUT: provisioning `Updating`, `Azure-AsyncOperation`.
fn created(st: &mut State, host: &str, c: Capture) -> Response {
    let mut props = c.props.clone();
    if let Some(obj) = props.as_object_mut() {
        obj.insert("provisioningState".into(), json!("Updating"));
    }
    let op_id = st.guid();
    Response::json(201, &resource_body(&c, props))
        .with_header(
            "Azure-AsyncOperation",
            format!(
                "{host}/subscriptions/{}/providers/Microsoft.Network/locations/{}/operations/{op_id}?api-version={NETWORK_API}",
                c.subscription, c.location
            ),
        )
        .with_header("Retry-After", LRO_RETRY_AFTER)
}

/// Where Network Watcher puts the `.cap` blob:
/// `https://{account}.blob.core.windows.net/network-watcher-logs/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.compute/virtualmachines/{vm}/{yyyy}/{mm}/{dd}/packetcapture_{hh}_{mm}_{ss}_{ms}.cap`.
fn storage_path(account: &str, vm: &ArmId, t: OffsetDateTime) -> String {
    let kind = if vm.kind.eq_ignore_ascii_case("virtualMachineScaleSets") {
        "virtualmachinescalesets"
    } else {
        "virtualmachines"
    };
    format!(
        "https://{account}.blob.core.windows.net/network-watcher-logs/subscriptions/{}/resourcegroups/{}/providers/microsoft.compute/{kind}/{}/{:04}/{:02}/{:02}/packetcapture_{:02}_{:02}_{:02}_{:03}.cap",
        vm.subscription.to_ascii_lowercase(),
        vm.resource_group.to_ascii_lowercase(),
        vm.name.to_ascii_lowercase(),
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_network_rp_rules() {
        assert!(valid_name("apc-vm1-20250101T000000-ab12"));
        assert!(valid_name("a_"));
        assert!(!valid_name(""));
        assert!(!valid_name("-a"));
        assert!(!valid_name("a-"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(&"a".repeat(81)));
        assert!(valid_name(&"a".repeat(80)));
    }

    #[test]
    fn ports() {
        assert!(valid_ports("80"));
        assert!(valid_ports("80-85"));
        assert!(valid_ports("80;443;"));
        assert!(!valid_ports("80-85;90"));
        assert!(!valid_ports("x"));
        assert!(!valid_ports("70000"));
    }
}
