#!/usr/bin/env bash
# Writes the deploy identity for deckhand (which rides the system OpenSSH client) from the
# environment: DEPLOY_SSH_KEY (private key) and DEPLOY_KNOWN_HOSTS (known_hosts lines).
# Nothing is printed but file names; strict host key checking stays on.
set -euo pipefail

die() { echo "setup-ssh: error: $*" >&2; exit 2; }

[ -n "${DEPLOY_SSH_KEY:-}" ] || die "DEPLOY_SSH_KEY is empty: set the environment's DEPLOY_SSH_KEY secret"
[ -n "${DEPLOY_KNOWN_HOSTS:-}" ] || die "DEPLOY_KNOWN_HOSTS is empty: set the environment's DEPLOY_KNOWN_HOSTS variable (ssh-keyscan output, checked by a human)"

ssh_dir="$HOME/.ssh"
install -d -m 0700 "$ssh_dir"
umask 077
printf '%s\n' "$DEPLOY_SSH_KEY" > "$ssh_dir/id_ed25519"
printf '%s\n' "$DEPLOY_KNOWN_HOSTS" > "$ssh_dir/known_hosts"
chmod 0600 "$ssh_dir/id_ed25519" "$ssh_dir/known_hosts"

# Fail early, without printing the key, if it is not a private key ssh can read.
ssh-keygen -y -f "$ssh_dir/id_ed25519" > /dev/null \
    || die "DEPLOY_SSH_KEY is not a valid unencrypted private key"

cat > "$ssh_dir/config" <<'CONFIG'
Host *
    IdentityFile ~/.ssh/id_ed25519
    IdentitiesOnly yes
    StrictHostKeyChecking yes
    UserKnownHostsFile ~/.ssh/known_hosts
    ServerAliveInterval 15
    ConnectTimeout 15
CONFIG
chmod 0600 "$ssh_dir/config"
echo "setup-ssh: wrote $ssh_dir/id_ed25519, $ssh_dir/known_hosts and $ssh_dir/config"
