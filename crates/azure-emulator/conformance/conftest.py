"""Fixtures of the conformance test: the emulator (started by scripts/conformance.sh, URL in
EMULATOR_URL), a TLS front made at test time, and SDK clients pointed at that front.

Why a TLS front: azure-identity refuses a non-HTTPS authority ("The value must be a TLS
protected (https) URL", azure/identity/_internal/utils.py normalize_authority), and azure-core's
BearerTokenCredentialPolicy refuses to send a token over plain HTTP unless every call passes
enforce_https=False (azure/core/pipeline/policies/_authentication.py). A loopback TLS proxy
with a self-signed certificate, trusted through connection_verify=<its PEM>, keeps both
libraries on their normal, secure code paths.
"""

import datetime
import ipaddress
import json
import os
import socket
import ssl
import threading
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "396c2760-2fa5-4948-b9d5-9839a7440836"
CLIENT_SECRET = "emulator-secret"
SUB = "00000000-0000-0000-0000-0000000000c1"
RG = "rg-conf"
WATCHER_RG = "NetworkWatcherRG"
WATCHER = "NetworkWatcher_westus"
SCOPE = "https://management.azure.com/.default"


def emulator_url():
    url = os.environ.get("EMULATOR_URL")
    if not url:
        pytest.fail("EMULATOR_URL is not set: run scripts/conformance.sh")
    return url.rstrip("/")


def control(method, path, body=None):
    """Calls the emulator's control API directly (plain HTTP, no token)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(emulator_url() + "/_emulator/" + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        text = resp.read().decode()
    return json.loads(text) if text else None


def _self_signed(tmp):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(tmp, "front.pem")
    key_path = os.path.join(tmp, "front.key")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return cert_path, key_path


def _pipe(src, dst):
    try:
        while True:
            chunk = src.recv(65536)
            if not chunk:
                break
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class TlsFront:
    """https://127.0.0.1:PORT → the emulator, byte for byte."""

    def __init__(self, tmp, upstream):
        self.cert, key = _self_signed(tmp)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(self.cert, key)
        host, port = upstream.split("://", 1)[1].split(":")
        self.upstream = (host, int(port))
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = "https://127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw):
        try:
            tls = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        up = socket.create_connection(self.upstream)
        threading.Thread(target=_pipe, args=(up, tls), daemon=True).start()
        _pipe(tls, up)

    def close(self):
        self.sock.close()


@pytest.fixture(scope="session")
def front(tmp_path_factory):
    f = TlsFront(str(tmp_path_factory.mktemp("tls")), emulator_url())
    control("POST", "public_base", {"base": f.url})
    vm = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/vm1" % (SUB, RG)
    control("POST", "vms", {"id": vm, "location": "westus", "osType": "Linux", "networkWatcherExtension": True})
    vmss = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachineScaleSets/ss1" % (SUB, RG)
    control(
        "POST",
        "vmss",
        {"id": vmss, "location": "westus", "osType": "Linux", "networkWatcherExtension": True, "instanceIds": ["0", "1"]},
    )
    nw = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/networkWatchers/%s" % (SUB, WATCHER_RG, WATCHER)
    control("POST", "watchers", {"id": nw, "location": "westus"})
    yield f
    f.close()


@pytest.fixture(autouse=True)
def default_modes(front):
    """Every test starts from the default modes (short LRO Retry-After), no faults, empty journal."""
    control("POST", "modes", {
        "async_actions": False, "async_body": "status", "lro_polls": 0, "lro_secs": 0, "lro_outcome": "succeeded",
        "lro_retry_after_secs": 1, "existing_name": "same_body_idempotent", "retry_after": "seconds",
        "updating_reads": 0, "updating_secs": 0, "scope_errors": True, "denied_actions": [],
    })
    control("DELETE", "faults")
    control("DELETE", "journal")
    yield


@pytest.fixture(scope="session")
def credential(front):
    from azure.identity import ClientSecretCredential

    return ClientSecretCredential(
        TENANT,
        CLIENT_ID,
        CLIENT_SECRET,
        authority=front.url,
        disable_instance_discovery=True,
        connection_verify=front.cert,
    )


def _client(cls, credential, front):
    return cls(
        credential,
        SUB,
        base_url=front.url,
        credential_scopes=[SCOPE],
        connection_verify=front.cert,
        polling_interval=1,
    )


@pytest.fixture(scope="session")
def compute(credential, front):
    from azure.mgmt.compute import ComputeManagementClient

    return _client(ComputeManagementClient, credential, front)


@pytest.fixture(scope="session")
def network(credential, front):
    from azure.mgmt.network import NetworkManagementClient

    return _client(NetworkManagementClient, credential, front)
