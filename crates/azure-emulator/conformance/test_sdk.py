"""The official Azure SDK for Python against the emulator: if the SDK accepts the emulator's
answers (shapes, status codes, headers, long-running operations, errors), the emulator is
close enough to ARM for the component's tests to mean something."""

import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from conftest import RG, SCOPE, SUB, WATCHER, WATCHER_RG, control

STORAGE = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Storage/storageAccounts/confstore" % (SUB, RG)
VM = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/vm1" % (SUB, RG)


def capture_body(target=VM, target_type="AzureVM", scope=None):
    props = {
        "target": target,
        "targetType": target_type,
        "timeLimitInSeconds": 60,
        "storageLocation": {"storageId": STORAGE},
        "filters": [{"protocol": "TCP", "localPort": "443"}],
    }
    if scope is not None:
        props["scope"] = scope
    return {"properties": props}


def fresh_name():
    return "conf-" + uuid.uuid4().hex[:12]


def test_token_from_the_emulators_entra_endpoint(credential):
    token = credential.get_token(SCOPE)
    assert token.token.startswith("emu.")
    assert token.expires_on > 0


def test_vm_scale_set_and_instance_get(compute):
    vm = compute.virtual_machines.get(RG, "vm1")
    assert vm.location == "westus"
    assert vm.properties.storage_profile.os_disk.os_type == "Linux"
    ss = compute.virtual_machine_scale_sets.get(RG, "ss1")
    assert ss.sku.capacity == 2
    assert ss.properties.virtual_machine_profile.storage_profile.os_disk.os_type == "Linux"
    ext = ss.properties.virtual_machine_profile.extension_profile.extensions[0]
    assert ext.properties.publisher == "Microsoft.Azure.NetworkWatcher"
    inst = compute.virtual_machine_scale_set_vms.get(RG, "ss1", "1", expand="instanceView")
    assert inst.instance_id == "1"
    codes = [s.code for s in inst.properties.instance_view.statuses]
    assert "PowerState/running" in codes
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machine_scale_set_vms.get(RG, "ss1", "7")


def test_watcher_list(network):
    names = [w.name for w in network.network_watchers.list_all()]
    assert WATCHER in names


def lifecycle(network, name, body):
    created = network.packet_captures.begin_create(WATCHER_RG, WATCHER, name, body).result()
    assert created.name == name
    assert created.properties.provisioning_state == "Succeeded"
    got = network.packet_captures.get(WATCHER_RG, WATCHER, name)
    assert got.properties.target == body["properties"]["target"]
    assert name in [c.name for c in network.packet_captures.list(WATCHER_RG, WATCHER)]
    status = network.packet_captures.begin_get_status(WATCHER_RG, WATCHER, name).result()
    assert status.packet_capture_status in ("NotStarted", "Running")
    network.packet_captures.begin_stop(WATCHER_RG, WATCHER, name).result()
    stopped = network.packet_captures.begin_get_status(WATCHER_RG, WATCHER, name).result()
    assert stopped.packet_capture_status == "Stopped"
    assert stopped.stop_reason == "Manual"
    network.packet_captures.begin_delete(WATCHER_RG, WATCHER, name).result()
    with pytest.raises(ResourceNotFoundError):
        network.packet_captures.get(WATCHER_RG, WATCHER, name)


def test_packet_capture_lifecycle_synchronous(network):
    lifecycle(network, fresh_name(), capture_body())
    counts = control("GET", "counts")
    assert counts.get("capture_status") == 2 and counts.get("capture_stop") == 1


def test_packet_capture_lifecycle_asynchronous(network):
    control("POST", "modes", {"async_actions": True, "lro_polls": 2, "updating_reads": 1})
    lifecycle(network, fresh_name(), capture_body())
    counts = control("GET", "counts")
    # The SDK followed Azure-AsyncOperation through InProgress, then read the Location result.
    assert counts.get("async_operation", 0) >= 6
    assert counts.get("operation_result", 0) >= 3
    statuses = [e["status"] for e in control("GET", "journal") if e["route"] == "capture_status"]
    assert statuses == [202, 202]


def test_query_status_202_with_an_empty_body(network):
    """The usual ARM long-running answer: the SDK takes the status from the Location result."""
    control("POST", "modes", {"async_actions": True, "async_body": "empty", "lro_polls": 1})
    lifecycle(network, fresh_name(), capture_body())
    statuses = [e["status"] for e in control("GET", "journal") if e["route"] == "capture_status"]
    assert statuses == [202, 202]
    # The SDK waits on Azure-AsyncOperation, then reads each result from the Location.
    journal = control("GET", "journal")
    assert [e["status"] for e in journal if e["route"] == "operation_result"].count(200) >= 2
    assert any(e["route"] == "async_operation" for e in journal)


def test_scale_set_capture(network):
    ss = VM.replace("virtualMachines/vm1", "virtualMachineScaleSets/ss1")
    name = fresh_name()
    created = network.packet_captures.begin_create(
        WATCHER_RG, WATCHER, name, capture_body(ss, "AzureVMSS", {"include": ["1"], "exclude": []})
    ).result()
    assert created.properties.scope.include == ["1"]
    with pytest.raises(HttpResponseError) as e:
        network.packet_captures.begin_create(
            WATCHER_RG, WATCHER, fresh_name(), capture_body(ss, "AzureVMSS", {"include": ["9"]})
        ).result()
    assert e.value.error.code == "InvalidPacketCaptureScope"
    network.packet_captures.begin_delete(WATCHER_RG, WATCHER, name).result()


@pytest.mark.parametrize("style", ["seconds", "http_date"])
def test_throttled_call_is_retried_after_retry_after(compute, style):
    control("POST", "modes", {"retry_after": style})
    control("POST", "faults", {"route": "vm_get", "kind": {"status": 429}, "trigger": {"count": 1}, "retry_after_secs": 1})
    vm = compute.virtual_machines.get(RG, "vm1")
    assert vm.name == "vm1"
    journal = [e for e in control("GET", "journal") if e["route"] == "vm_get"]
    assert [e["status"] for e in journal] == [429, 200]


def test_permission_error(network):
    control("POST", "modes", {"denied_actions": ["Microsoft.Network/networkWatchers/packetCaptures/write"]})
    with pytest.raises(HttpResponseError) as e:
        network.packet_captures.begin_create(WATCHER_RG, WATCHER, fresh_name(), capture_body()).result()
    assert e.value.status_code == 403
    assert e.value.error.code == "AuthorizationFailed"
    assert "Microsoft.Network/networkWatchers/packetCaptures/write" in e.value.error.message
