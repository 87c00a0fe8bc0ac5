//! Azure Resource Manager: authentication, api-version, VM GET, watcher list, packet captures
//! (shapes from `testdata/azure-samples/{compute,network-watcher,arm}/`).

use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};

use crate::http::{Request, Response};
use crate::model::{ArmId, Capture, OpKind, Operation, State, Vm, normalize_location};
use crate::{AsyncBody, ExistingName, Inner, LroOutcome, OsType, Route, routes, versions};

/// api-version put in the URLs the emulator hands out.
const NETWORK_API: &str = "2025-07-01";

/// ARM's error body `{"error":{"code","message"}}`.
pub(crate) fn error(status: u16, code: &str, message: &str) -> Response {
    Response::json(status, &json!({"error": {"code": code, "message": message}}))
}

/// A path no route knows.
pub(crate) fn not_found_route(req: &Request) -> Response {
    error(404, "NoRegisteredProviderFound", &format!("The emulator has no route for {} {}.", req.method, req.path))
}

/// Where a call lands, for the subscription, resource-group, authorization and api-version
/// checks ARM makes before the resource provider sees the call.
struct Target {
    sub: String,
    rg: Option<String>,
    /// RBAC action, e.g. `Microsoft.Network/networkWatchers/packetCaptures/write`.
    action: String,
    /// The scope named in `AuthorizationFailed`.
    scope: String,
    /// Resource type as named in `NoRegisteredProviderFound`.
    type_name: &'static str,
    versions: &'static [&'static str],
}

fn target(route: &Route) -> Option<Target> {
    let rg_scope =
        |sub: &str, rg: &str, rest: &str| format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/{rest}");
    let t = match route {
        Route::VmGet { sub, rg, vm } => Target {
            sub: sub.clone(),
            rg: Some(rg.clone()),
            action: "Microsoft.Compute/virtualMachines/read".into(),
            scope: rg_scope(sub, rg, &format!("Microsoft.Compute/virtualMachines/{vm}")),
            type_name: "virtualMachines",
            versions: versions::COMPUTE,
        },
        Route::VmssGet { sub, rg, vmss } => Target {
            sub: sub.clone(),
            rg: Some(rg.clone()),
            action: "Microsoft.Compute/virtualMachineScaleSets/read".into(),
            scope: rg_scope(sub, rg, &format!("Microsoft.Compute/virtualMachineScaleSets/{vmss}")),
            type_name: "virtualMachineScaleSets",
            versions: versions::COMPUTE,
        },
        Route::VmssVmGet { sub, rg, vmss, instance } => Target {
            sub: sub.clone(),
            rg: Some(rg.clone()),
            action: "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read".into(),
            scope: rg_scope(
                sub,
                rg,
                &format!("Microsoft.Compute/virtualMachineScaleSets/{vmss}/virtualMachines/{instance}"),
            ),
            type_name: "virtualMachineScaleSets/virtualMachines",
            versions: versions::COMPUTE,
        },
        Route::WatchersList { sub } => Target {
            sub: sub.clone(),
            rg: None,
            action: "Microsoft.Network/networkWatchers/read".into(),
            scope: format!("/subscriptions/{sub}"),
            type_name: "networkWatchers",
            versions: versions::NETWORK,
        },
        Route::CaptureList { sub, rg, nw } => Target {
            sub: sub.clone(),
            rg: Some(rg.clone()),
            action: "Microsoft.Network/networkWatchers/packetCaptures/read".into(),
            scope: rg_scope(sub, rg, &format!("Microsoft.Network/networkWatchers/{nw}")),
            type_name: "networkWatchers/packetCaptures",
            versions: versions::NETWORK,
        },
        Route::Capture { op, sub, rg, nw, name } => {
            let verb = match *op {
                routes::CAPTURE_PUT => "write",
                routes::CAPTURE_DELETE => "delete",
                routes::CAPTURE_STATUS => "queryStatus/action",
                routes::CAPTURE_STOP => "stop/action",
                _ => "read",
            };
            Target {
                sub: sub.clone(),
                rg: Some(rg.clone()),
                action: format!("Microsoft.Network/networkWatchers/packetCaptures/{verb}"),
                scope: rg_scope(sub, rg, &format!("Microsoft.Network/networkWatchers/{nw}/packetCaptures/{name}")),
                type_name: "networkWatchers/packetCaptures",
                versions: versions::NETWORK,
            }
        }
        _ => return None,
    };
    Some(t)
}

pub(crate) fn handle(inner: &Inner, route: &Route, req: &Request) -> Response {
    if let Some(denied) = authenticate(inner, req) {
        return denied;
    }
    let client_id = inner.lock().settings.config.client_id.clone();
    let mut st = inner.lock();
    let host = st
        .settings
        .hostile_base
        .clone()
        .or_else(|| st.settings.public_base.clone())
        .unwrap_or_else(|| inner.base().to_string());
    if let Route::AsyncOperation { id, .. } | Route::OperationResult { id, .. } = route {
        if let Some(bad) = check_api_version_present(req) {
            return bad;
        }
        return match route {
            Route::AsyncOperation { .. } => async_operation(&mut st, id),
            _ => operation_result(&mut st, &host, id),
        };
    }
    let Some(t) = target(route) else {
        return not_found_route(req);
    };
    let modes = st.settings.config.modes.clone();
    if modes.scope_errors && !known_subscription(&st, &t.sub) {
        return error(404, "SubscriptionNotFound", &format!("The subscription '{}' could not be found.", t.sub));
    }
    if modes.denied_actions.iter().any(|a| a.eq_ignore_ascii_case(&t.action)) {
        return error(
            403,
            "AuthorizationFailed",
            &format!(
                "The client '{client_id}' with object id '{}' does not have authorization to perform action '{}' over scope '{}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
                modes.principal_object_id, t.action, t.scope
            ),
        );
    }
    if let Some(bad) = check_api_version(&st, req, &t) {
        return bad;
    }
    if let (true, Some(rg)) = (modes.scope_errors, &t.rg)
        && !known_resource_group(&st, &t.sub, rg)
    {
        return error(404, "ResourceGroupNotFound", &format!("Resource group '{rg}' could not be found."));
    }
    let expand_instance_view = req.query_param("$expand").is_some_and(|v| v.eq_ignore_ascii_case("instanceView"));
    match route {
        Route::VmGet { sub, rg, vm } => vm_get(&st, sub, rg, vm, expand_instance_view),
        Route::VmssGet { sub, rg, vmss } => vmss_get(&st, sub, rg, vmss),
        Route::VmssVmGet { sub, rg, vmss, instance } => {
            vmss_vm_get(&st, (sub, rg, vmss, instance), expand_instance_view)
        }
        Route::WatchersList { sub } => watchers_list(&st, sub, &host),
        Route::CaptureList { sub, rg, nw } => capture_list(&mut st, sub, rg, nw, &host),
        Route::Capture { op, sub, rg, nw, name } => capture_op(&mut st, &host, op, (sub, rg, nw, name), req),
        _ => not_found_route(req),
    }
}

fn known_subscription(st: &State, sub: &str) -> bool {
    st.vms.values().any(|v| v.id.subscription.eq_ignore_ascii_case(sub))
        || st.watchers.values().any(|w| w.id.subscription.eq_ignore_ascii_case(sub))
}

fn known_resource_group(st: &State, sub: &str, rg: &str) -> bool {
    let same = |id: &ArmId| id.subscription.eq_ignore_ascii_case(sub) && id.resource_group.eq_ignore_ascii_case(rg);
    st.vms.values().any(|v| same(&v.id)) || st.watchers.values().any(|w| same(&w.id))
}

fn capture_op(st: &mut State, host: &str, op: &str, at: CaptureAt<'_>, req: &Request) -> Response {
    let (sub, rg, nw, name) = at;
    let key = capture_key(sub, rg, nw, name);
    let now = st.now();
    match op {
        routes::CAPTURE_PUT => capture_put(st, host, at, req),
        routes::CAPTURE_GET => match st.captures.get_mut(&key) {
            Some(c) => {
                let body = resource_body(c, props_for_get(c, now));
                note_read(c);
                Response::json(200, &body)
            }
            None => capture_not_found(rg, nw, name),
        },
        routes::CAPTURE_DELETE => match st.captures.remove(&key) {
            Some(c) => {
                // The uploaded file outlives the capture resource.
                if let Some(blob) = c.blob.clone()
                    && c.status_at(now).status == "Stopped"
                {
                    st.kept_files.insert(blob, (c.name.clone(), c.start_at));
                }
                let op_id = new_operation(st, OpKind::Delete);
                accepted(st, host, &c, &op_id, Response::empty(202))
            }
            None => Response::empty(204),
        },
        routes::CAPTURE_STATUS => {
            let Some(c) = st.captures.get(&key) else {
                return capture_not_found(rg, nw, name);
            };
            let body = query_status(c, now);
            if !st.settings.config.modes.async_actions {
                return Response::json(200, &body);
            }
            let c = c.clone();
            let op_id = new_operation(st, OpKind::QueryStatus(key));
            let resp = match st.settings.config.modes.async_body {
                // The recorded 202 answers carry the status fields too.
                AsyncBody::Status => Response::json(202, &body),
                // The usual ARM long-running answer: the result only comes from `Location`.
                AsyncBody::Empty => Response::empty(202),
            };
            accepted(st, host, &c, &op_id, resp)
        }
        _ => {
            let Some(c) = st.captures.get_mut(&key) else {
                return capture_not_found(rg, nw, name);
            };
            // The stop takes effect at once; an asynchronous answer only delays its report.
            if c.status_at(now).status != "Stopped" && !c.error {
                c.stopped = Some(now);
            }
            if !st.settings.config.modes.async_actions {
                return Response::empty(200);
            }
            let c = c.clone();
            let op_id = new_operation(st, OpKind::Stop(key));
            accepted(st, host, &c, &op_id, Response::empty(202))
        }
    }
}

/// A read (GET, list) of a capture counts down its `Updating` reads.
fn note_read(c: &mut Capture) {
    c.updating_reads = c.updating_reads.saturating_sub(1);
}

/// Registers a long-running operation under the current modes; answers its id.
fn new_operation(st: &mut State, kind: OpKind) -> String {
    let modes = st.settings.config.modes.clone();
    let now = st.now();
    let id = st.guid();
    let failure = match modes.lro_outcome {
        LroOutcome::Succeeded => None,
        LroOutcome::Failed { code, message } => Some((code, message)),
    };
    st.operations.insert(
        id.clone(),
        Operation {
            kind,
            started: now,
            polls_left: modes.lro_polls,
            ready_at: now.saturating_add(Duration::seconds(i64::try_from(modes.lro_secs).unwrap_or(i64::MAX))),
            failure,
            ended: None,
            location_url: String::new(),
        },
    );
    id
}

fn operation_urls(host: &str, subscription: &str, location: &str, op_id: &str) -> (String, String) {
    let base = format!("{host}/subscriptions/{subscription}/providers/Microsoft.Network/locations/{location}");
    (
        format!("{base}/operations/{op_id}?api-version={NETWORK_API}"),
        format!("{base}/operationResults/{op_id}?api-version={NETWORK_API}"),
    )
}

/// A `202 Accepted` with `Azure-AsyncOperation`, `Location` and `Retry-After`.
fn accepted(st: &mut State, host: &str, c: &Capture, op_id: &str, resp: Response) -> Response {
    let (async_url, location) = operation_urls(host, &c.subscription, &c.location, op_id);
    if let Some(op) = st.operations.get_mut(op_id) {
        op.location_url = location.clone();
    }
    resp.with_header("Azure-AsyncOperation", async_url)
        .with_header("Location", location)
        .with_header("Retry-After", st.settings.config.modes.lro_retry_after_secs.to_string())
}

/// Where an operation stands after one more poll: `None` for an unknown id, `Err(())` while
/// in progress, else `Ok(failure)`. A PUT's operation follows its capture's provisioning.
#[allow(clippy::type_complexity)]
fn poll_operation(st: &mut State, id: &str) -> Option<Result<Option<(String, String)>, ()>> {
    let now = st.now();
    let kind = st.operations.get(id)?.kind.clone();
    if let OpKind::Put(key) = &kind {
        let Some(c) = st.captures.get_mut(key) else {
            return Some(Ok(None));
        };
        let state = provisioning_state(c, now);
        note_read(c);
        return Some(match state {
            "Updating" => Err(()),
            "Failed" => Ok(Some((
                "PacketCaptureFailed".to_string(),
                format!("Packet capture '{}' failed on its target.", c.name),
            ))),
            _ => Ok(None),
        });
    }
    let op = st.operations.get_mut(id)?;
    if op.poll(now) { Some(Ok(op.failure.clone())) } else { Some(Err(())) }
}

fn operation_not_found(id: &str) -> Response {
    error(404, "OperationNotFound", &format!("The operation '{id}' could not be found."))
}

/// `GET` of an `Azure-AsyncOperation` URL: `InProgress`, then `Succeeded` or `Failed`.
fn async_operation(st: &mut State, id: &str) -> Response {
    let Some(state) = poll_operation(st, id) else {
        return operation_not_found(id);
    };
    let now = st.now();
    let retry = st.settings.config.modes.lro_retry_after_secs.to_string();
    let started = st.operations.get(id).map(|o| o.started).unwrap_or(now);
    match state {
        Err(()) => Response::json(200, &json!({"status": "InProgress", "startTime": fmt_time(started)}))
            .with_header("Retry-After", retry),
        Ok(None) => Response::json(
            200,
            &json!({"status": "Succeeded", "startTime": fmt_time(started), "endTime": fmt_time(now)}),
        ),
        Ok(Some((code, message))) => Response::json(
            200,
            &json!({
                "status": "Failed",
                "startTime": fmt_time(started),
                "endTime": fmt_time(now),
                "error": {"code": code, "message": message}
            }),
        ),
    }
}

/// `GET` of a `Location` URL: `202` while in progress, then the operation's result.
fn operation_result(st: &mut State, host: &str, id: &str) -> Response {
    let Some(state) = poll_operation(st, id) else {
        return operation_not_found(id);
    };
    let retry = st.settings.config.modes.lro_retry_after_secs.to_string();
    let (kind, location) = match st.operations.get(id) {
        Some(o) => (o.kind.clone(), o.location_url.clone()),
        None => return operation_not_found(id),
    };
    match state {
        Err(()) => {
            let location = if location.is_empty() { format!("{host}/") } else { location };
            Response::empty(202).with_header("Location", location).with_header("Retry-After", retry)
        }
        Ok(Some((code, message))) => error(500, &code, &message),
        Ok(None) => {
            let now = st.now();
            match kind {
                OpKind::Delete => Response::empty(204),
                OpKind::Stop(_) => Response::empty(200),
                OpKind::QueryStatus(key) => match st.captures.get(&key) {
                    Some(c) => Response::json(200, &query_status(c, now)),
                    None => error(404, "ResourceNotFound", "The packet capture no longer exists."),
                },
                OpKind::Put(key) => match st.captures.get(&key) {
                    Some(c) => Response::json(200, &resource_body(c, props_for_get(c, now))),
                    None => error(404, "ResourceNotFound", "The packet capture no longer exists."),
                },
            }
        }
    }
}

/// Checks only that `api-version` is there (operation URLs carry the one ARM handed out).
fn check_api_version_present(req: &Request) -> Option<Response> {
    match req.query_param("api-version") {
        Some(_) => None,
        None => Some(error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )),
    }
}

/// Checks `api-version` against the versions Azure publishes for the resource type, with
/// ARM's codes and messages: `InvalidApiVersionParameter` for a malformed one,
/// `NoRegisteredProviderFound` for a well-formed one the provider does not serve.
fn check_api_version(st: &State, req: &Request, t: &Target) -> Option<Response> {
    if let Some(missing) = check_api_version_present(req) {
        return Some(missing);
    }
    let v = req.query_param("api-version").unwrap_or_default();
    if !versions::well_formed(&v) {
        return Some(error(
            400,
            "InvalidApiVersionParameter",
            &format!("The api-version '{v}' is invalid. The supported versions are '{}'.", t.versions.join(",")),
        ));
    }
    if versions::supported(t.versions, &v) {
        return None;
    }
    let compute = std::ptr::eq(t.versions, versions::COMPUTE);
    let mut locations: Vec<String> = if compute {
        st.vms.values().map(|v| v.location.clone()).collect()
    } else {
        st.watchers.values().map(|w| w.location.clone()).collect()
    };
    locations.sort();
    locations.dedup();
    let location = locations.first().cloned().unwrap_or_else(|| "westus".to_string());
    Some(error(
        400,
        "NoRegisteredProviderFound",
        &format!(
            "No registered resource provider found for location '{location}' and API version '{v}' for type '{}'. The supported api-versions are '{}'. The supported locations are '{}'.",
            t.type_name,
            t.versions.join(", "),
            locations.join(", ")
        ),
    ))
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

pub(crate) fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn vm_get(st: &State, sub: &str, rg: &str, name: &str, instance_view: bool) -> Response {
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
    if instance_view && let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert("instanceView".into(), instance_view_body(vm, &vm.id.name, st.now()));
    }
    // Real ARM leaves `resources` out when the VM has no extensions.
    if vm.agent
        && let Some(obj) = body.as_object_mut()
    {
        obj.insert(
            "resources".into(),
            agent_extension(&id, "Microsoft.Compute/virtualMachines/extensions", vm, agent_type),
        );
    }
    Response::json(200, &body)
}

/// The `resources` list of a VM or scale-set instance with the Network Watcher agent installed.
fn agent_extension(id: &str, kind: &str, vm: &Vm, agent_type: &str) -> Value {
    json!([{
        "name": "AzureNetworkWatcherExtension",
        "id": format!("{id}/extensions/AzureNetworkWatcherExtension"),
        "type": kind,
        "location": vm.location,
        "properties": {
            "autoUpgradeMinorVersion": true,
            "provisioningState": "Succeeded",
            "publisher": "Microsoft.Azure.NetworkWatcher",
            "type": agent_type,
            "typeHandlerVersion": "1.4"
        }
    }])
}

fn os_bits(os_type: OsType) -> (&'static str, &'static str, Value) {
    match os_type {
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
    }
}

fn image_reference(os_type: OsType) -> Value {
    match os_type {
        OsType::Linux => json!({
            "publisher": "Canonical",
            "offer": "0001-com-ubuntu-server-jammy",
            "sku": "22_04-lts-gen2",
            "version": "latest"
        }),
        OsType::Windows => json!({
            "publisher": "MicrosoftWindowsServer",
            "offer": "WindowsServer",
            "sku": "2022-datacenter-azure-edition",
            "version": "latest"
        }),
    }
}

/// `properties.instanceView` as `$expand=instanceView` answers it for a running VM.
fn instance_view_body(vm: &Vm, computer_name: &str, now: OffsetDateTime) -> Value {
    let (os, agent_type, _) = os_bits(vm.os_type);
    let t = fmt_time(now);
    let mut view = json!({
        "platformUpdateDomain": 0,
        "platformFaultDomain": 0,
        "computerName": computer_name,
        "osName": if vm.os_type == OsType::Linux { "ubuntu" } else { "Windows Server 2022 Datacenter Azure Edition" },
        "osVersion": if vm.os_type == OsType::Linux { "22.04" } else { "10.0.20348" },
        "vmAgent": {
            "vmAgentVersion": "2.12.0.2",
            "statuses": [{
                "code": "ProvisioningState/succeeded",
                "level": "Info",
                "displayStatus": "Ready",
                "message": "Guest Agent is running",
                "time": t
            }],
            "extensionHandlers": []
        },
        "disks": [{
            "name": format!("{}_OsDisk_1", vm.id.name),
            "statuses": [{"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded", "time": t}]
        }],
        "hyperVGeneration": "V2",
        "statuses": [
            {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded", "time": t},
            {"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"}
        ]
    });
    if vm.agent
        && let Some(obj) = view.as_object_mut()
    {
        obj.insert(
            "extensions".into(),
            json!([{
                "name": "AzureNetworkWatcherExtension",
                "type": format!("Microsoft.Azure.NetworkWatcher.{agent_type}"),
                "typeHandlerVersion": "1.4.3320.1",
                "statuses": [{
                    "code": "ProvisioningState/succeeded",
                    "level": "Info",
                    "displayStatus": "Provisioning succeeded",
                    "message": "Enable succeeded"
                }]
            }]),
        );
        if let Some(handlers) = obj.get_mut("vmAgent").and_then(|a| a.get_mut("extensionHandlers")) {
            *handlers = json!([{
                "type": format!("Microsoft.Azure.NetworkWatcher.{agent_type}"),
                "typeHandlerVersion": "1.4.3320.1",
                "status": {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Ready"}
            }]);
        }
    }
    let _ = os;
    view
}

fn scale_set<'a>(st: &'a State, sub: &str, rg: &str, name: &str) -> Option<&'a Vm> {
    let key =
        format!("/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.compute/virtualmachinescalesets/{name}")
            .to_ascii_lowercase();
    st.vms.get(&key).filter(|v| v.scale_set)
}

fn vmss_not_found(rg: &str, name: &str) -> Response {
    error(
        404,
        "ResourceNotFound",
        &format!(
            "The Resource 'Microsoft.Compute/virtualMachineScaleSets/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

/// `GET …/virtualMachineScaleSets/{name}` (Uniform orchestration, shapes of
/// `VirtualMachineScaleSet_Get` in the ComputeRP specs).
fn vmss_get(st: &State, sub: &str, rg: &str, name: &str) -> Response {
    let Some(vmss) = scale_set(st, sub, rg, name) else {
        return vmss_not_found(rg, name);
    };
    let (os, agent_type, os_config) = os_bits(vmss.os_type);
    let mut os_profile = json!({
        "computerNamePrefix": vmss.id.name.to_ascii_lowercase(),
        "adminUsername": "azureuser",
        "secrets": [],
        "allowExtensionOperations": true,
        "requireGuestProvisionSignal": true
    });
    if let (Some(p), Some(extra)) = (os_profile.as_object_mut(), os_config.as_object()) {
        p.extend(extra.clone());
    }
    let extensions: Vec<Value> = if vmss.agent {
        vec![json!({
            "name": "AzureNetworkWatcherExtension",
            "properties": {
                "autoUpgradeMinorVersion": true,
                "publisher": "Microsoft.Azure.NetworkWatcher",
                "type": agent_type,
                "typeHandlerVersion": "1.4"
            }
        })]
    } else {
        Vec::new()
    };
    let rg_prefix =
        format!("/subscriptions/{}/resourceGroups/{}/providers", vmss.id.subscription, vmss.id.resource_group);
    let body = json!({
        "name": vmss.id.name,
        "id": vmss.id.canonical(),
        "type": "Microsoft.Compute/virtualMachineScaleSets",
        "location": vmss.location,
        "tags": {},
        "sku": {"name": vmss.size, "tier": "Standard", "capacity": vmss.instances.len()},
        "properties": {
            "singlePlacementGroup": false,
            "orchestrationMode": "Uniform",
            "upgradePolicy": {"mode": "Manual"},
            "virtualMachineProfile": {
                "osProfile": os_profile,
                "storageProfile": {
                    "osDisk": {
                        "osType": os,
                        "createOption": "FromImage",
                        "caching": "ReadWrite",
                        "managedDisk": {"storageAccountType": "Premium_LRS"},
                        "diskSizeGB": 30
                    },
                    "imageReference": image_reference(vmss.os_type)
                },
                "networkProfile": {"networkInterfaceConfigurations": [{
                    "name": format!("{}-nic", vmss.id.name),
                    "properties": {
                        "primary": true,
                        "enableAcceleratedNetworking": false,
                        "ipConfigurations": [{
                            "name": format!("{}-ipconfig", vmss.id.name),
                            "properties": {
                                "subnet": {"id": format!("{rg_prefix}/Microsoft.Network/virtualNetworks/{}-vnet/subnets/default", vmss.id.name)},
                                "privateIPAddressVersion": "IPv4"
                            }
                        }]
                    }
                }]},
                "extensionProfile": {"extensions": extensions}
            },
            "provisioningState": "Succeeded",
            "overprovision": false,
            "doNotRunExtensionsOnOverprovisionedVMs": false,
            "uniqueId": vmss.vm_uuid,
            "platformFaultDomainCount": 1,
            "timeCreated": "2025-01-01T00:00:00.0000000+00:00"
        }
    });
    Response::json(200, &body)
}

/// Base-36 of an instance id, zero-padded to 6 (how Uniform scale sets name computers).
fn computer_suffix(instance: &str) -> String {
    let mut n: u64 = instance.parse().unwrap_or(0);
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    format!("{:0>6}", String::from_utf8_lossy(&out))
}

/// `GET …/virtualMachineScaleSets/{name}/virtualMachines/{instanceId}` (shapes of
/// `VirtualMachineScaleSetVM_Get` in the ComputeRP specs); `$expand=instanceView` adds
/// `properties.instanceView`.
fn vmss_vm_get(st: &State, at: (&str, &str, &str, &str), instance_view: bool) -> Response {
    let (sub, rg, name, instance) = at;
    let Some(vmss) = scale_set(st, sub, rg, name) else {
        return vmss_not_found(rg, name);
    };
    if !vmss.instances.iter().any(|i| i == instance) {
        return error(
            404,
            "ResourceNotFound",
            &format!(
                "The Resource 'Microsoft.Compute/virtualMachineScaleSets/{name}/virtualMachines/{instance}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
        );
    }
    let (os, agent_type, os_config) = os_bits(vmss.os_type);
    let id = format!("{}/virtualMachines/{instance}", vmss.id.canonical());
    let computer_name = format!("{}{}", vmss.id.name.to_ascii_lowercase(), computer_suffix(instance));
    let mut os_profile = json!({
        "computerName": computer_name,
        "adminUsername": "azureuser",
        "secrets": [],
        "allowExtensionOperations": true,
        "requireGuestProvisionSignal": true
    });
    if let (Some(p), Some(extra)) = (os_profile.as_object_mut(), os_config.as_object()) {
        p.extend(extra.clone());
    }
    let rg_prefix =
        format!("/subscriptions/{}/resourceGroups/{}/providers", vmss.id.subscription, vmss.id.resource_group);
    let mut body = json!({
        "name": format!("{}_{instance}", vmss.id.name),
        "id": id,
        "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
        "location": vmss.location,
        "tags": {},
        "instanceId": instance,
        "sku": {"name": vmss.size, "tier": "Standard"},
        "properties": {
            "latestModelApplied": true,
            "modelDefinitionApplied": "VirtualMachineScaleSet",
            "vmId": format!("{}-{:0>4}", &vmss.vm_uuid[..vmss.vm_uuid.len().saturating_sub(5)], instance),
            "hardwareProfile": {"vmSize": vmss.size},
            "storageProfile": {
                "imageReference": image_reference(vmss.os_type),
                "osDisk": {
                    "osType": os,
                    "name": format!("{}_{}_OsDisk_1", vmss.id.name, instance),
                    "createOption": "FromImage",
                    "caching": "ReadWrite",
                    "managedDisk": {
                        "storageAccountType": "Premium_LRS",
                        "id": format!("{rg_prefix}/Microsoft.Compute/disks/{}_{}_OsDisk_1", vmss.id.name, instance)
                    },
                    "diskSizeGB": 30
                },
                "dataDisks": []
            },
            "osProfile": os_profile,
            "networkProfile": {"networkInterfaces": [{
                "id": format!("{id}/networkInterfaces/{}-nic", vmss.id.name)
            }]},
            "provisioningState": "Succeeded",
            "timeCreated": "2025-01-01T00:00:00.0000000+00:00"
        }
    });
    if instance_view && let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert("instanceView".into(), instance_view_body(vmss, &computer_name, st.now()));
    }
    if vmss.agent
        && let Some(obj) = body.as_object_mut()
    {
        obj.insert(
            "resources".into(),
            agent_extension(
                &id,
                "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/extensions",
                vmss,
                agent_type,
            ),
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

fn capture_list(st: &mut State, sub: &str, rg: &str, nw: &str, host: &str) -> Response {
    let prefix = format!("{}/", capture_key(sub, rg, nw, "")).replace("//", "/");
    let prefix = prefix.trim_end_matches('/').to_string() + "/";
    let now = st.now();
    let value: Vec<Value> = st
        .captures
        .iter_mut()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(_, c)| {
            let body = resource_body(c, props_for_get(c, now));
            note_read(c);
            body
        })
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

/// `provisioningState` of a capture now: `Updating` for its first reads/seconds (as
/// configured), `Failed` once the capture is in `Error` (so GET and list agree with
/// queryStatus), else `Succeeded`.
pub(crate) fn provisioning_state(c: &Capture, now: OffsetDateTime) -> &'static str {
    if c.error {
        "Failed"
    } else if c.updating_reads > 0 || now < c.provisioned_at {
        "Updating"
    } else {
        "Succeeded"
    }
}

/// `properties` as GET and list answer them.
pub(crate) fn props_for_get(c: &Capture, now: OffsetDateTime) -> Value {
    let mut p = c.props.clone();
    if let Some(obj) = p.as_object_mut() {
        obj.insert("provisioningState".into(), json!(provisioning_state(c, now)));
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
        let same = existing.request_props == Value::Object(props.clone());
        let idempotent = match st.settings.config.modes.existing_name {
            ExistingName::SameBodyIdempotent => same,
            ExistingName::Idempotent => true,
            ExistingName::Conflict => false,
        };
        if idempotent {
            let existing = existing.clone();
            return created(st, host, existing);
        }
        let why = if same { "" } else { " with different parameters" };
        return error(
            409,
            "PacketCaptureAlreadyExists",
            &format!(
                "Packet capture '{name}' already exists on network watcher '{nw}'{why}. Delete it or use another name."
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
    if let Err(r) = check_scope(props, &vm) {
        return r;
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
    let mut blob_key = None;
    out.insert("bytesToCapturePerPacket".into(), json!(bytes_per_packet));
    out.insert("totalBytesPerSession".into(), json!(bytes_per_session));
    out.insert("timeLimitInSeconds".into(), json!(time_limit));
    out.entry("filters").or_insert_with(|| json!([]));
    if let Some(account) = account {
        let mut loc = storage.clone();
        let blob = blob_name(&vm.id, now);
        let url = if st.settings.config.modes.emulator_storage_paths {
            // The host ARM answers with: the public base, or the hostile one when set.
            format!("{host}/{account}/{}/{blob}", crate::blob::CONTAINER)
        } else {
            format!("https://{account}.blob.core.windows.net/{}/{blob}", crate::blob::CONTAINER)
        };
        loc.insert("storagePath".into(), json!(url));
        blob_key = Some(format!("{account}/{}/{blob}", crate::blob::CONTAINER));
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
        updating_reads: st.settings.config.modes.updating_reads,
        provisioned_at: now.saturating_add(Duration::seconds(
            i64::try_from(st.settings.config.modes.updating_secs).unwrap_or(i64::MAX),
        )),
        blob: blob_key,
    };
    st.captures.insert(key, capture.clone());
    created(st, host, capture)
}

/// `properties.scope.include/exclude` (instance ids of an `AzureVMSS` target, or
/// `{vmss}_{id}` instance names): every entry must be an instance of the seeded scale set,
/// and an `AzureVM` target takes no scope.
fn check_scope(props: &Map<String, Value>, vm: &Vm) -> Result<(), Response> {
    let Some(scope) = props.get("scope").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let Some(scope) = scope.as_object() else {
        return Err(bad("InvalidRequestFormat", "'scope' must be an object with 'include' and 'exclude' lists."));
    };
    let mut lists: Vec<(&str, Vec<String>)> = Vec::new();
    for key in ["include", "exclude"] {
        let entries = match scope.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for item in items {
                    let Some(text) = item.as_str() else {
                        return Err(bad("InvalidRequestFormat", format!("'scope.{key}' must list strings.")));
                    };
                    out.push(text.to_string());
                }
                out
            }
            Some(_) => return Err(bad("InvalidRequestFormat", format!("'scope.{key}' must be an array."))),
        };
        lists.push((key, entries));
    }
    let any = lists.iter().any(|(_, l)| !l.is_empty());
    if any && !vm.scale_set {
        return Err(bad(
            "InvalidPacketCaptureScope",
            "scope.include and scope.exclude apply only to a target of type AzureVMSS.",
        ));
    }
    let prefix = format!("{}_", vm.id.name);
    let instance_of = |entry: &str| -> Option<String> {
        let id = if entry.len() > prefix.len() && entry[..prefix.len()].eq_ignore_ascii_case(&prefix) {
            &entry[prefix.len()..]
        } else {
            entry
        };
        vm.instances.iter().find(|i| i.as_str() == id).cloned()
    };
    let mut included = Vec::new();
    for (key, entries) in &lists {
        for entry in entries {
            match instance_of(entry) {
                Some(id) if *key == "include" => included.push(id),
                Some(id) if included.contains(&id) => {
                    return Err(bad(
                        "InvalidPacketCaptureScope",
                        format!("Instance {entry} is both included and excluded."),
                    ));
                }
                Some(_) => {}
                None => {
                    return Err(bad(
                        "InvalidPacketCaptureScope",
                        format!(
                            "Instance {entry} in scope.{key} is not an instance of virtual machine scale set {}.",
                            vm.id.name
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The `201` answer of a capture PUT: provisioning `Updating`, `Azure-AsyncOperation`
/// (whose status follows the capture's provisioning state).
fn created(st: &mut State, host: &str, c: Capture) -> Response {
    let mut props = c.props.clone();
    if let Some(obj) = props.as_object_mut() {
        obj.insert("provisioningState".into(), json!("Updating"));
    }
    let key = capture_key_of(&c);
    let op_id = new_operation(st, OpKind::Put(key));
    let (async_url, _) = operation_urls(host, &c.subscription, &c.location, &op_id);
    Response::json(201, &resource_body(&c, props))
        .with_header("Azure-AsyncOperation", async_url)
        .with_header("Retry-After", st.settings.config.modes.lro_retry_after_secs.to_string())
}

fn capture_key_of(c: &Capture) -> String {
    c.id.to_ascii_lowercase()
}

/// Where Network Watcher puts the `.cap` blob in container `network-watcher-logs` of
/// `https://{account}.blob.core.windows.net`:
/// `subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.compute/virtualmachines/{vm}/{yyyy}/{mm}/{dd}/packetcapture_{hh}_{mm}_{ss}_{ms}.cap`.
fn blob_name(vm: &ArmId, t: OffsetDateTime) -> String {
    let kind = if vm.kind.eq_ignore_ascii_case("virtualMachineScaleSets") {
        "virtualmachinescalesets"
    } else {
        "virtualmachines"
    };
    format!(
        "subscriptions/{}/resourcegroups/{}/providers/microsoft.compute/{kind}/{}/{:04}/{:02}/{:02}/packetcapture_{:02}_{:02}_{:02}_{:03}.cap",
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
