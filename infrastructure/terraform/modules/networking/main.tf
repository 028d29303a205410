# VPC, the API droplets' cloud firewall and the trusted-source rules of the managed databases.
#
# Cloud firewalls and database firewalls cannot carry tags themselves: they are named
# "<project>-<env>-..." and they *target* droplets by tag.

resource "digitalocean_vpc" "this" {
  name        = "${var.name_prefix}-vpc"
  region      = var.region
  ip_range    = var.vpc_ip_range
  description = "Private network of ${var.name_prefix} (managed by Terraform)"
}

resource "digitalocean_firewall" "api" {
  name = "${var.name_prefix}-api"
  tags = [var.api_droplet_tag]

  # SSH: admin addresses only. deckhand, Ansible and CI reach the droplets over SSH.
  inbound_rule {
    protocol         = "tcp"
    port_range       = "22"
    source_addresses = var.admin_cidrs
  }

  # The deckhand proxy's public port: from the load balancer only.
  dynamic "inbound_rule" {
    for_each = length(var.load_balancer_uids) > 0 ? [1] : []
    content {
      protocol                  = "tcp"
      port_range                = tostring(var.api_port)
      source_load_balancer_uids = var.load_balancer_uids
    }
  }

  # Environments without a load balancer (dev): from the listed addresses only.
  dynamic "inbound_rule" {
    for_each = length(var.api_direct_cidrs) > 0 ? [1] : []
    content {
      protocol         = "tcp"
      port_range       = tostring(var.api_port)
      source_addresses = var.api_direct_cidrs
    }
  }

  # Ping from inside the VPC, for diagnosis.
  inbound_rule {
    protocol         = "icmp"
    source_addresses = [var.vpc_ip_range]
  }

  # Outbound: package mirrors, the container registry, the managed databases, DNS, NTP.
  outbound_rule {
    protocol              = "tcp"
    port_range            = "1-65535"
    destination_addresses = ["0.0.0.0/0", "::/0"]
  }

  outbound_rule {
    protocol              = "udp"
    port_range            = "1-65535"
    destination_addresses = ["0.0.0.0/0", "::/0"]
  }

  outbound_rule {
    protocol              = "icmp"
    destination_addresses = ["0.0.0.0/0", "::/0"]
  }
}

# Managed PostgreSQL / Redis: reachable from the API droplets only (by tag, so a new
# droplet is trusted as soon as it carries the tag). No public or admin-address rule:
# operators reach a database through an SSH tunnel via an API droplet (see the runbooks).
resource "digitalocean_database_firewall" "trusted_sources" {
  for_each = var.database_cluster_ids

  cluster_id = each.value

  rule {
    type  = "tag"
    value = var.api_droplet_tag
  }
}
