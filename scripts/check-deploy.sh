#!/usr/bin/env bash
# Checks deploy/ offline (run by scripts/test.sh): shellcheck on every shell script of the
# repository, then scripts/check_deploy.py (Kubernetes manifests against the SpinApp CRD and the
# Kubernetes API schemas, runtime configuration, deploy/azure/setup.sh's dry run and a re-run with
# a stand-in az, a structural check of the Bicep files). Installs what it needs on a fresh Debian
# machine: shellcheck (Debian package, as root) and a Python virtual environment under
# target/deploy-check/ with pinned kubernetes-validate, jsonschema and PyYAML from PyPI.
# Closes with `deploy checks: N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v shellcheck >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing shellcheck (Debian package)"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q shellcheck
  else
    echo "shellcheck is not on PATH: install Debian's package (sudo apt-get install shellcheck)" >&2
    echo "deploy checks: 0 passed, 1 failed"
    exit 1
  fi
fi

venv=target/deploy-check/venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import kubernetes_validate, jsonschema, yaml' 2>/dev/null; then
  echo "== making $venv (kubernetes-validate, jsonschema, PyYAML)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "kubernetes-validate==1.37.0" "jsonschema==4.26.0" "PyYAML==6.0.3"
fi

# Every shell script: by name, and any tracked file whose first line is a sh/bash shebang.
mapfile -t scripts < <(git ls-files | while IFS= read -r f; do
  case $f in
    *.sh) echo "$f" ;;
    *) [ -f "$f" ] && head -c 64 "$f" | head -1 | grep -qE '^#!.*\b(ba)?sh\b' && echo "$f" ;;
  esac
done | sort -u)
sc_passed=0
sc_failed=0
for f in "${scripts[@]}"; do
  if shellcheck -x "$f"; then
    echo "ok   shellcheck $f"
    sc_passed=$((sc_passed + 1))
  else
    echo "FAIL shellcheck $f"
    sc_failed=$((sc_failed + 1))
  fi
done
[ ${#scripts[@]} -gt 0 ] || { echo "no shell scripts found" >&2; sc_failed=1; }

status=0
out=$("$venv/bin/python" scripts/check_deploy.py) || status=$?
printf '%s\n' "$out" | sed '$d'
last=$(printf '%s\n' "$out" | tail -1)
py_passed=$(sed -n 's/^deploy checks: \([0-9]*\) passed, [0-9]* failed$/\1/p' <<<"$last")
py_failed=$(sed -n 's/^deploy checks: [0-9]* passed, \([0-9]*\) failed$/\1/p' <<<"$last")
if [ -z "$py_passed" ]; then
  echo "check_deploy.py did not finish: $last" >&2
  py_passed=0
  py_failed=1
fi
failed=$((sc_failed + py_failed))
echo "deploy checks: $((sc_passed + py_passed)) passed, $failed failed"
[ "$failed" = 0 ] && [ "$status" = 0 ]
