# Managed PostgreSQL for one environment. Automated daily backups and point-in-time recovery
# (7 days) are part of the managed service; infrastructure/ansible/backup.yml adds logical dumps.
# The trusted-source firewall lives in the networking module.

resource "digitalocean_database_cluster" "postgres" {
  name                 = "${var.name_prefix}-pg"
  engine               = "pg"
  version              = var.postgres_version
  size                 = var.size
  region               = var.region
  node_count           = var.node_count
  private_network_uuid = var.vpc_id
  tags                 = var.tags

  maintenance_window {
    day  = var.maintenance_day
    hour = var.maintenance_hour
  }

  lifecycle {
    # Destroying the cluster destroys its backups too: make it a deliberate two-step act.
    prevent_destroy = true
  }
}

resource "digitalocean_database_db" "app" {
  cluster_id = digitalocean_database_cluster.postgres.id
  name       = var.database_name
}

resource "digitalocean_database_user" "app" {
  cluster_id = digitalocean_database_cluster.postgres.id
  name       = var.database_user
}
