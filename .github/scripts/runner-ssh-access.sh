#!/usr/bin/env bash
# Lets this CI runner reach the droplets' SSH port for the length of a job: adds (open) or
# removes (close) an inbound rule "tcp/22 from <runner IP>/32" on the environment's cloud
# firewall, through the DigitalOcean API. The firewall otherwise admits SSH from the admin
# addresses only. Terraform removes a rule left behind by a killed job at its next apply.
#
#   runner-ssh-access.sh open|close
# Environment: DIGITALOCEAN_TOKEN (secret, firewall write scope), FIREWALL_ID
# (`terraform output -raw api_firewall_id`), RUNNER_TEMP (set by GitHub Actions).
set -euo pipefail

die() { echo "runner-ssh-access: error: $*" >&2; exit 2; }

action=${1:-}
case "$action" in open|close) ;; *) die "usage: $0 open|close" ;; esac
[ -n "${DIGITALOCEAN_TOKEN:-}" ] || die "DIGITALOCEAN_TOKEN is empty"
[ -n "${FIREWALL_ID:-}" ] || die "FIREWALL_ID is empty"
state_file="${RUNNER_TEMP:-/tmp}/runner-ssh-access.ip"

if [ "$action" = open ]; then
    ip=$(curl -fsS --max-time 10 https://api.ipify.org) || die "cannot learn this runner's public IPv4"
    [[ "$ip" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || die "unexpected public address: $ip"
    printf '%s\n' "$ip" > "$state_file"
    method=POST
else
    [ -s "$state_file" ] || { echo "runner-ssh-access: nothing to close"; exit 0; }
    ip=$(cat "$state_file")
    method=DELETE
fi

body=$(printf '{"inbound_rules":[{"protocol":"tcp","ports":"22","sources":{"addresses":["%s/32"]}}]}' "$ip")
# The token goes in a header read from stdin, so it never appears in a process listing.
status=$(printf 'header = "Authorization: Bearer %s"\n' "$DIGITALOCEAN_TOKEN" \
    | curl -sS --max-time 30 -o /dev/null -w '%{http_code}' -K - \
        -X "$method" -H 'Content-Type: application/json' -d "$body" \
        "https://api.digitalocean.com/v2/firewalls/${FIREWALL_ID}/rules")
case "$status" in
    204) echo "runner-ssh-access: $action tcp/22 for $ip/32 on firewall $FIREWALL_ID" ;;
    *) die "DigitalOcean API answered HTTP $status to $method firewall rules" ;;
esac
if [ "$action" = close ]; then
    rm -f "$state_file"
    # Droplets apply firewall changes within seconds; nothing to wait for on close.
else
    sleep 5 # let the rule reach the droplets before the first SSH connection
fi
