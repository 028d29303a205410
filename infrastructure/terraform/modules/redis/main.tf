# Managed Redis-compatible cache (Valkey) for one environment, on the VPC, TLS only.
# The trusted-source firewall lives in the networking module.

resource "digitalocean_database_cluster" "redis" {
  name                 = "${var.name_prefix}-redis"
  engine               = var.engine
  version              = var.engine_version
  size                 = var.size
  region               = var.region
  node_count           = var.node_count
  private_network_uuid = var.vpc_id
  tags                 = var.tags

  maintenance_window {
    day  = var.maintenance_day
    hour = var.maintenance_hour
  }
}
