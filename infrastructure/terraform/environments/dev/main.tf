# dev: one API droplet (no load balancer), a single-node PostgreSQL, a Redis-compatible
# cache, alerts. deckhand deploys to the droplet; the proxy's port 3001 is reachable only
# from api_direct_cidrs (or through an SSH tunnel).

locals {
  environment = "dev"
  name_prefix = "${var.project}-${local.environment}"
  api_port    = 3001
  deploy_user = "deploy"
}

# Every resource that can carry tags gets these two; the role tag selects the API droplets.
resource "digitalocean_tag" "environment" {
  name = "env:${local.environment}"
}

resource "digitalocean_tag" "project" {
  name = "project:${var.project}"
}

resource "digitalocean_tag" "api" {
  name = "${local.name_prefix}-api"
}

locals {
  tags = [digitalocean_tag.environment.name, digitalocean_tag.project.name]
}

module "networking" {
  source = "../../modules/networking"

  name_prefix          = local.name_prefix
  region               = var.region
  vpc_ip_range         = var.vpc_ip_range
  api_droplet_tag      = digitalocean_tag.api.name
  admin_cidrs          = var.admin_cidrs
  api_port             = local.api_port
  api_direct_cidrs     = var.api_direct_cidrs
  database_cluster_ids = { postgres = module.database.cluster_id, redis = module.redis.cluster_id }
}

module "api_cluster" {
  source = "../../modules/api-cluster"

  name_prefix            = local.name_prefix
  region                 = var.region
  vpc_id                 = module.networking.vpc_id
  droplet_count          = var.droplet_count
  droplet_size           = var.droplet_size
  ssh_key_fingerprints   = var.ssh_key_fingerprints
  ops_ssh_public_keys    = var.ops_ssh_public_keys
  deploy_ssh_public_keys = var.deploy_ssh_public_keys
  droplet_tag            = digitalocean_tag.api.name
  tags                   = local.tags
  backups                = false
  api_port               = local.api_port
  load_balancer_enabled  = false
}

module "database" {
  source = "../../modules/database"

  name_prefix = local.name_prefix
  region      = var.region
  vpc_id      = module.networking.vpc_id
  tags        = local.tags
  size        = var.db_size
  node_count  = var.db_node_count
}

module "redis" {
  source = "../../modules/redis"

  name_prefix = local.name_prefix
  region      = var.region
  vpc_id      = module.networking.vpc_id
  tags        = local.tags
  size        = var.redis_size
}

module "monitoring" {
  source = "../../modules/monitoring"

  name_prefix       = local.name_prefix
  droplet_tag       = digitalocean_tag.api.name
  alert_emails      = var.alert_emails
  slack_channel     = var.slack_channel
  slack_webhook_url = var.slack_webhook_url
}

resource "digitalocean_project" "this" {
  name        = local.name_prefix
  description = "${var.project} ${local.environment} (managed by Terraform, deployed by deckhand)"
  purpose     = "Service or API"
  environment = "Development"
  resources = concat(
    module.api_cluster.droplet_urns,
    [module.database.cluster_urn, module.redis.cluster_urn],
  )
}
