"""Known-answer vector for the user-delegation SAS signer (crates/apc-core/tests/storage.rs).

Microsoft's own Python SDK computes the SAS, so the vector does not share our reading of the
string-to-sign. azure-storage-blob 12.24.1 is the last release whose newest service version is
2025-01-05, the version we pin (`sv`); later releases sign with newer fields.

    python3 -m venv /tmp/azsdk24 && /tmp/azsdk24/bin/pip install azure-storage-blob==12.24.1
    /tmp/azsdk24/bin/python scripts/sas-vector.py
"""
from azure.storage.blob import BlobSasPermissions, UserDelegationKey, generate_blob_sas

key = UserDelegationKey()
key.signed_oid = "6d2b7a1c-0f3e-4c55-9a41-0c1e2b3d4f50"
key.signed_tid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
key.signed_start = "2026-05-28T20:26:40Z"
key.signed_expiry = "2026-05-29T20:31:40Z"
key.signed_service = "b"
key.signed_version = "2025-01-05"
# 32 bytes 0x00..0x1f, base64.
key.value = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

for blob in ["vm1/2026/05/28/capture.cap", "dir with space/ünï+code.cap"]:
    sts = []
    token = generate_blob_sas(
        account_name="pcstore",
        container_name="network-watcher-logs",
        blob_name=blob,
        user_delegation_key=key,
        permission=BlobSasPermissions(read=True),
        expiry="2026-05-29T20:26:40Z",
        protocol="https",
        sts_hook=sts.append,
    )
    print(blob)
    print(repr(sts[0]))
    print(token)

# An http emulator origin: `spr=https,http`, path-style account.
sts = []
token = generate_blob_sas(
    account_name="devstoreaccount1",
    container_name="network-watcher-logs",
    blob_name="vm1/capture.cap",
    user_delegation_key=key,
    permission=BlobSasPermissions(read=True),
    expiry="2026-05-29T00:00:00Z",
    protocol="https,http",
    sts_hook=sts.append,
)
print(repr(sts[0]))
print(token)
