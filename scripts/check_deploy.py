"""Offline checks of deploy/: run by scripts/check-deploy.sh (which makes the virtual
environment with kubernetes-validate, jsonschema and PyYAML) from scripts/test.sh.

- Kubernetes manifests: SpinApp against the CRD's openAPIV3Schema vendored in
  deploy/kubernetes/schema/ (unknown fields refused, as `kubectl --validate=strict` would), every
  other kind against the Kubernetes API schemas kubernetes-validate ships, strict; and the
  SpinApp's variables against spin.toml.
- Runtime configuration files: TOML with the store and provider types Spin knows.
- deploy/azure/setup.sh: its --dry-run output (role scopes filled in, the assignments, the action
  group, no secret), and with a stand-in `az` on PATH: a first run creates, a second run on what
  the first made creates nothing.
- deploy/azure/main.bicep and its modules: a structural check (no Bicep compiler is offline).

Prints one line per check and closes with `deploy checks: N passed, M failed`.
"""

import copy
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S_VERSION = "1.31"
results = []


def check(name, fn):
    try:
        fn()
        results.append((name, None))
        print(f"ok   {name}")
    except Exception as e:  # every failure is reported, the run goes on
        results.append((name, e))
        print(f"FAIL {name}: {e}")


def strict(schema):
    """The schema with unknown properties refused wherever properties are listed."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
                node.setdefault("additionalProperties", False)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def manifests():
    for path in sorted((ROOT / "deploy/kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                yield path, doc


def spin_variables():
    manifest = tomllib.loads((ROOT / "spin.toml").read_text())
    return manifest["variables"]


SPINAPP_SCHEMA = strict(json.loads((ROOT / "deploy/kubernetes/schema/spinapp-v1alpha1.schema.json").read_text()))


def validate_spinapp(doc):
    # metadata is ObjectMeta, checked by the API server, not by the CRD's schema.
    body = {k: v for k, v in doc.items() if k != "metadata"}
    jsonschema.validate(body, SPINAPP_SCHEMA)


def kubernetes_checks():
    docs = list(manifests())
    assert docs, "no manifests under deploy/kubernetes"
    for path, doc in docs:
        name = f"{path.relative_to(ROOT)}: {doc.get('kind')} {doc.get('metadata', {}).get('name')}"
        if doc.get("kind") == "SpinApp":
            check(f"{name} matches the SpinApp CRD (strict)", lambda d=doc: validate_spinapp(d))
        else:
            check(f"{name} matches Kubernetes {K8S_VERSION} (strict)",
                  lambda d=doc: kubernetes_validate.validate(d, K8S_VERSION, strict=True))

    def validators_refuse_mistakes():
        app = next(d for _, d in docs if d["kind"] == "SpinApp")
        bad = copy.deepcopy(app)
        bad["spec"]["replica"] = 3
        try:
            validate_spinapp(bad)
        except jsonschema.ValidationError:
            pass
        else:
            raise AssertionError("a misspelt SpinApp field passed")
        bad = copy.deepcopy(app)
        bad["spec"]["variables"][0]["valueFrom"]["secretKeyRef"]["nam"] = "x"
        try:
            validate_spinapp(bad)
        except jsonschema.ValidationError:
            pass
        else:
            raise AssertionError("a misspelt secretKeyRef field passed")
        cron = next(d for _, d in docs if d["kind"] == "CronJob")
        bad = copy.deepcopy(cron)
        bad["spec"]["schedul"] = bad["spec"].pop("schedule")
        try:
            kubernetes_validate.validate(bad, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError:
            pass
        else:
            raise AssertionError("a CronJob without schedule passed")

    check("the validators refuse a misspelt field", validators_refuse_mistakes)

    def spinapp_matches_spin_toml():
        app = next(d for _, d in docs if d["kind"] == "SpinApp")
        declared = spin_variables()
        spec = app["spec"]
        assert spec["replicas"] >= 2, "several replicas"
        assert spec["executor"] == "containerd-shim-spin"
        names = [v["name"] for v in spec["variables"]]
        assert len(names) == len(set(names)), f"a variable twice: {names}"
        for v in spec["variables"]:
            assert v["name"] in declared, f"{v['name']} is not declared in spin.toml"
            assert "value" not in v, f"{v['name']} has a value in the manifest: it must come from the Secret"
            ref = v["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "alert-packet-capture" and ref["key"] == v["name"], v
        required = {n for n, spec_ in declared.items() if spec_.get("required")}
        missing = required - set(names)
        assert not missing, f"required variables not set: {missing}"
        stores = spec["runtimeConfig"]["keyValueStores"]
        assert [s["name"] for s in stores] == ["default"] and stores[0]["type"] == "redis", stores
        assert stores[0]["options"][0]["valueFrom"]["secretKeyRef"]["name"] == "alert-packet-capture"

    check("the SpinApp sets every required variable from the Secret, nothing inline", spinapp_matches_spin_toml)

    def cronjob_polls_every_minute():
        cron = next(d for _, d in docs if d["kind"] == "CronJob")
        assert cron["spec"]["schedule"] == "* * * * *"
        container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        script = " ".join(container["args"])
        assert "-X POST" in script and "/poll" in script and "x-api-key" in script, script
        assert "code=" not in script, "the key belongs in a header"
        env = {e["name"]: e for e in container["env"]}
        assert env["WEBHOOK_KEYS"]["valueFrom"]["secretKeyRef"]["key"] == "webhook_keys"

    check("the CronJob POSTs /poll every minute with the Secret's key", cronjob_polls_every_minute)

    def readme_secret_has_every_key():
        readme = (ROOT / "deploy/README.md").read_text()
        block = readme[readme.index("kubectl create secret generic alert-packet-capture"):]
        block = block[: block.index("```")]
        keys = set(re.findall(r"--from-literal=([a-z_]+)=", block))
        app = next(d for _, d in docs if d["kind"] == "SpinApp")
        wanted = {v["name"] for v in app["spec"]["variables"] if not v["valueFrom"]["secretKeyRef"].get("optional")}
        wanted.add("redis_url")
        assert wanted <= keys, f"README's Secret lacks {sorted(wanted - keys)}"

    check("deploy/README.md's Secret holds every key the SpinApp requires", readme_secret_has_every_key)


KNOWN_STORES = {"spin", "redis", "azure_cosmos", "aws_dynamo"}
KNOWN_PROVIDERS = {"azure_key_vault", "vault"}


def runtime_config_checks():
    files = sorted((ROOT / "deploy/runtime-config").glob("*.toml"))
    assert files
    for path in files:
        def one(path=path):
            config = tomllib.loads(path.read_text())
            stores = config.get("key_value_store", {})
            for label, store in stores.items():
                assert store.get("type") in KNOWN_STORES, f"{label}: type {store.get('type')!r}"
            for provider in config.get("config_provider", []):
                assert provider.get("type") in KNOWN_PROVIDERS, provider
                if provider["type"] == "azure_key_vault":
                    allowed = {"type", "vault_url", "client_id", "client_secret", "tenant_id", "authority_host"}
                    assert set(provider) <= allowed, set(provider) - allowed
                    assert provider.get("authority_host", "AzurePublicCloud") in {
                        "AzurePublicCloud", "AzureChina", "AzureGermany", "AzureGovernment"}
            assert stores or config.get("config_provider"), "configures nothing"
            if stores.get("default", {}).get("type") == "azure_cosmos":
                assert {"account", "database", "container"} <= set(stores["default"])
            if stores.get("default", {}).get("type") == "redis":
                assert stores["default"]["url"].startswith(("redis://", "rediss://"))

        check(f"{path.relative_to(ROOT)} is runtime configuration Spin reads", one)


SUB = "11111111-2222-3333-4444-555555555555"
SETUP = ROOT / "deploy/azure/setup.sh"


def run_setup(args, extra_env, path_prefix=None):
    env = {k: v for k, v in os.environ.items() if k not in {"VM_NAME", "APC_URL", "SUB", "ST", "OUT", "FILES_ROLE"}}
    env.update(extra_env)
    if path_prefix:
        env["PATH"] = f"{path_prefix}:{env['PATH']}"
    out = subprocess.run(["bash", str(SETUP), *args], env=env, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise AssertionError(f"setup.sh {args} exited {out.returncode}: {out.stderr}{out.stdout[-2000:]}")
    return out.stdout


def commands(output):
    return [line[2:] for line in output.splitlines() if line.startswith("+ ")]


def role_file(name):
    return json.loads((ROOT / "deploy" / name).read_text())


def setup_checks():
    env = {"SUB": SUB, "VM_NAME": "web-1", "APC_URL": "https://apc.example.com"}
    sub = f"/subscriptions/{SUB}"

    def dry_run():
        out = run_setup(["--dry-run"], env)
        cmds = commands(out)
        # The role JSON printed for each custom role: actions as in deploy/, scopes filled in.
        printed = re.findall(r"((?:  \| .*\n)+)", out)
        roles = [json.loads("\n".join(line[4:] for line in block.splitlines())) for block in printed]
        by_name = {r["Name"]: r for r in roles}
        responder = role_file("role-alert-packet-capture.json")
        assert by_name[responder["Name"]]["Actions"] == responder["Actions"]
        assert by_name[responder["Name"]]["AssignableScopes"] == [
            f"{sub}/resourceGroups/app-rg", f"{sub}/resourceGroups/NetworkWatcherRG", f"{sub}/resourceGroups/capture-rg"]
        ops = role_file("role-alert-packet-capture-operations.json")
        assert by_name[ops["Name"]]["AssignableScopes"] == [sub]
        assert by_name[ops["Name"]]["Actions"] == ops["Actions"]
        for role in roles:
            assert all("REPLACE_ME" not in s and "00000000-0000" not in s for s in role["AssignableScopes"]), role
        # Every assignment, on the right scope.
        st_id = f"{sub}/resourceGroups/capture-rg/providers/Microsoft.Storage/storageAccounts/pcap11111111"
        assignments = set()
        for c in cmds:
            m = re.match(r"az role assignment create .*--role '([^']+)' --scope (\S+) -o none$", c)
            if m:
                assignments.add((m.group(1), m.group(2)))
        assert assignments == {
            ("Alert Packet Capture Responder", f"{sub}/resourceGroups/app-rg"),
            ("Alert Packet Capture Responder", f"{sub}/resourceGroups/NetworkWatcherRG"),
            ("Alert Packet Capture Responder", f"{sub}/resourceGroups/capture-rg"),
            ("Alert Packet Capture Operation Reader", sub),
            ("Storage Blob Data Reader", st_id),
        }, assignments
        creates = [c.split(" -")[0] for c in cmds]
        for wanted in ["az group create", "az storage account create", "az role definition create",
                       "az ad sp create-for-rbac", "az network watcher configure",
                       "az monitor action-group create", "az monitor metrics alert create"]:
            assert wanted in creates, f"{wanted} missing from {creates}"
        ag = next(c for c in cmds if c.startswith("az monitor action-group create"))
        assert "'https://apc.example.com/alerts?code=<webhook key>' usecommonalertschema" in ag, ag
        alert = next(c for c in cmds if c.startswith("az monitor metrics alert create"))
        assert f"--scopes {sub}/resourceGroups/app-rg/providers/Microsoft.Compute/virtualMachines/web-1" in alert
        assert "actionGroups/apc-capture" in alert
        sa = next(c for c in cmds if c.startswith("az storage account create"))
        assert "--allow-shared-key-access true" in sa and "--allow-blob-public-access false" in sa
        # The storage account comes before the role whose scope names it; roles before assignments.
        order = [creates.index(x) for x in ["az storage account create", "az role definition create",
                                             "az ad sp create-for-rbac", "az role assignment create"]]
        assert order == sorted(order), order

    check("setup.sh --dry-run prints the whole set-up, scopes filled in", dry_run)

    def custom_files_role():
        out = run_setup(["--dry-run"], {**env, "FILES_ROLE": "custom"})
        files = role_file("role-alert-packet-capture-files.json")
        assert f'"Name": "{files["Name"]}"' in out
        st_id = f"{sub}/resourceGroups/capture-rg/providers/Microsoft.Storage/storageAccounts/pcap11111111"
        assert f"--role '{files['Name']}' --scope {st_id}" in out

    check("setup.sh FILES_ROLE=custom assigns the file-reader role on the account", custom_files_role)

    def secure_webhook():
        out = run_setup(["--dry-run"], {**env, "SECURE_WEBHOOK": "1"})
        cmds = commands(out)
        assert "az ad app create --display-name alert-packet-capture-webhook -o none" in cmds, cmds
        roles = next(c for c in cmds if "--app-roles" in c)
        assert '"value":"ActionGroupsSecureWebhook"' in roles and '"Application"' in roles, roles
        assert "az ad sp create --id 461e8683-5575-4561-ac7f-899cc907d62a -o none" in cmds, cmds
        grant = next(c for c in cmds if c.startswith("az rest --method POST"))
        assert "/appRoleAssignments" in grant and '"appRoleId"' in grant, grant
        patch = next(c for c in cmds if c.startswith("az rest --method PATCH"))
        assert "actionGroups/apc-capture?api-version=2023-01-01" in patch, patch
        assert '"useAadAuth":true' in patch and '"serviceUri":"https://apc.example.com/alerts"' in patch, patch
        assert "code=" not in patch, "the secure receiver carries no key"
        # The token receiver replaces the key one: the PATCH comes after the group's create.
        assert cmds.index(patch) > next(i for i, c in enumerate(cmds) if c.startswith("az monitor action-group create"))
        plain = commands(run_setup(["--dry-run"], env))
        assert not any(c.startswith("az ad app") or c.startswith("az rest") for c in plain), "only when asked"

    check("setup.sh SECURE_WEBHOOK=1 makes the app registration, its role grant and the token receiver",
          secure_webhook)

    def without_url_no_action_group():
        out = run_setup(["--dry-run"], {"SUB": SUB})
        assert not any(c.startswith("az monitor") for c in commands(out)), out

    check("setup.sh without APC_URL makes no action group", without_url_no_action_group)

    def idempotent_with_stand_in_az():
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            (d / "bin").mkdir()
            state = d / "state"
            state.mkdir()
            # A stand-in az: lookups answer from what earlier "creates" recorded; every call is logged.
            (d / "bin/az").write_text(AZ_STAND_IN)
            (d / "bin/az").chmod(0o755)
            env2 = {**env, "APC_STATE": str(state), "OUT": str(d / "secrets")}
            first = commands(run_setup([], env2, d / "bin"))
            assert any(c.startswith("az role definition create") for c in first), first
            secrets = d / "secrets"
            assert (secrets / "webhook-key").stat().st_mode & 0o077 == 0, "the key file is private"
            key = (secrets / "webhook-key").read_text().strip()
            assert len(key) == 48
            second_out = run_setup([], env2, d / "bin")
            second = commands(second_out)
            made = [c for c in second if " create" in c and not c.startswith("az monitor action-group create")]
            assert made == [], f"the second run created again: {made}"
            assert any(c.startswith("az role definition update") for c in second), second
            log = (state / "calls").read_text()
            assert key not in first[-1] and key not in second_out, "the key was printed"
            assert f"code={key}" in log, "the action group got the real key"

    check("setup.sh run twice (stand-in az): the second run creates nothing, the key is never printed",
          idempotent_with_stand_in_az)


# Answers like az for the lookups setup.sh makes, remembering what was created in $APC_STATE.
AZ_STAND_IN = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >> "$APC_STATE/calls"
has() { grep -qxF -- "$1" "$APC_STATE/made" 2>/dev/null; }
mark() { printf '%s\n' "$1" >> "$APC_STATE/made"; }
arg() { local want=$1; shift; while [ $# -gt 0 ]; do [ "$1" = "$want" ] && { echo "$2"; return; }; shift; done; }
case "$1 $2" in
  "account set") ;;
  "account show") echo "aaaaaaaa-0000-0000-0000-000000000000" ;;
  "group exists") has "group $(arg -n "$@")" && echo true || echo false ;;
  "group create") mark "group $(arg -n "$@")" ;;
  "storage account")
    if [ "$3" = show ]; then has storage && echo /the/storage/id; else mark storage; fi ;;
  "role definition")
    case $3 in
      list) name=$(arg --name "$@"); has "role $name" && echo "guid-$RANDOM" ;;
      create) f=$(arg --role-definition "$@"); mark "role $(sed -n 's/^  "Name": "\(.*\)",$/\1/p' "${f#@}")" ;;
      update) ;;
    esac ;;
  "ad sp")
    case $3 in
      list) has sp && echo "app-1234" ;;
      create-for-rbac) mark sp; echo '{"appId": "app-1234", "password": "pw", "tenant": "t"}' ;;
      show) echo "object-5678" ;;
    esac ;;
  "role assignment")
    role=$(arg --role "$@"); scope=$(arg --scope "$@")
    if [ "$3" = list ]; then has "ra $role $scope" && echo "/ra/id"; else mark "ra $role $scope"; fi ;;
  "network watcher") ;;
  "monitor action-group") ;;
  "monitor metrics")
    if [ "$4" = show ]; then has alert && echo /alert/id; else mark alert; fi ;;
  *) echo "stand-in az: unexpected: $*" >&2; exit 1 ;;
esac
"""


def code_only(text):
    """Bicep without comments and with strings emptied (a `'` in a comment starts no string)."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("//", i):
            i = text.find("\n", i)
            i = len(text) if i < 0 else i
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = len(text) if end < 0 else end + 2
        elif text[i] == "'":
            j = i + 1
            while j < len(text) and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            out.append("''")
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def bicep_checks():
    files = sorted((ROOT / "deploy/azure").rglob("*.bicep"))
    assert files

    def structure(path):
        text = path.read_text()
        stripped = code_only(text)
        for open_, close in ["{}", "[]", "()"]:
            assert stripped.count(open_) == stripped.count(close), f"unbalanced {open_}{close}"
        for m in re.finditer(r"^resource \w+ '([^']+)'", text, re.M):
            assert re.fullmatch(r"Microsoft\.[A-Za-z]+/[A-Za-z/]+@\d{4}-\d{2}-\d{2}(-preview)?", m.group(1)), m.group(1)
        for m in re.finditer(r"^module \w+ '([^']+)'", text, re.M):
            assert (path.parent / m.group(1)).exists(), f"module {m.group(1)} is missing"
        params = re.findall(r"^param (\w+) ", text, re.M)
        for p in params:
            uses = len(re.findall(rf"\b{p}\b", stripped))
            assert uses >= 2, f"param {p} is never used"

    def refuses_mistakes():
        main = (ROOT / "deploy/azure/main.bicep").read_text()
        with tempfile.TemporaryDirectory() as d:
            for broken in [main.replace("permissions: [", "permissions: ", 1),
                           main.replace("@2022-04-01' = {", "' = {", 1),
                           main.replace("'modules/watcher.bicep'", "'modules/nowhere.bicep'"),
                           main + "\nparam unused string\n"]:
                path = Path(d) / "main.bicep"
                path.write_text(broken)
                for m in (ROOT / "deploy/azure/modules").glob("*.bicep"):
                    (Path(d) / "modules").mkdir(exist_ok=True)
                    (Path(d) / "modules" / m.name).write_text(m.read_text())
                try:
                    structure(path)
                except AssertionError:
                    continue
                raise AssertionError("a broken main.bicep passed the structural check")

    check("the Bicep structural check refuses a broken file", refuses_mistakes)

    for path in files:
        check(f"{path.relative_to(ROOT)}: balanced, typed resources, modules present, params used",
              lambda p=path: structure(p))

    def same_roles_as_deploy_json():
        text = "\n".join(p.read_text() for p in files)
        for name in ["role-alert-packet-capture.json", "role-alert-packet-capture-operations.json",
                     "role-alert-packet-capture-files.json"]:
            role = role_file(name)
            assert f"loadJsonContent('../{name}')" in text or f"loadJsonContent('../../{name}')" in text, \
                f"main.bicep does not take its role from {name}"
        for wanted in ["Microsoft.Insights/actionGroups", "Microsoft.Insights/metricAlerts",
                       "useCommonAlertSchema: true", "Microsoft.Network/networkWatchers",
                       "Microsoft.Storage/storageAccounts", "Microsoft.Authorization/roleAssignments",
                       "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"]:
            assert wanted in text, f"{wanted} missing from the Bicep files"

    check("the Bicep files declare the same resources, roles from deploy/*.json", same_roles_as_deploy_json)


def main():
    kubernetes_checks()
    runtime_config_checks()
    setup_checks()
    bicep_checks()
    failed = sum(1 for _, e in results if e is not None)
    print(f"deploy checks: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
