# API droplets (Docker + a non-root deploy user via cloud-init) and, optionally, a load
# balancer in front of them. deckhand owns everything inside Docker from then on.

locals {
  user_data = templatefile("${path.module}/templates/cloud-init.yaml.tftpl", {
    ops_keys    = var.ops_ssh_public_keys
    deploy_keys = var.deploy_ssh_public_keys
  })
}

resource "digitalocean_droplet" "api" {
  count = var.droplet_count

  name       = format("%s-api-%d", var.name_prefix, count.index + 1)
  region     = var.region
  size       = var.droplet_size
  image      = var.image
  vpc_uuid   = var.vpc_id
  ssh_keys   = var.ssh_key_fingerprints
  monitoring = true # the metrics agent that the monitoring module's alerts need
  backups    = var.backups
  user_data  = local.user_data
  tags       = concat(var.tags, [var.droplet_tag])

  graceful_shutdown = true

  lifecycle {
    # cloud-init runs once, at the first boot: a changed template or a newer image slug must
    # not replace a running droplet. Ansible (setup-api.yml) converges running hosts.
    ignore_changes = [user_data, image, ssh_keys]
  }
}

resource "digitalocean_loadbalancer" "api" {
  count = var.load_balancer_enabled ? 1 : 0

  name      = "${var.name_prefix}-lb"
  region    = var.region
  vpc_uuid  = var.vpc_id
  size_unit = var.load_balancer_size_unit

  # Every droplet with the role tag is a target; deckhand's host-by-host deploys rely on
  # the health check taking a host out of rotation while its proxy switches color.
  droplet_tag = var.droplet_tag

  forwarding_rule {
    entry_protocol  = "http"
    entry_port      = 80
    target_protocol = "http"
    target_port     = var.api_port
  }

  dynamic "forwarding_rule" {
    for_each = var.certificate_name == "" ? [] : [var.certificate_name]
    content {
      entry_protocol   = "https"
      entry_port       = 443
      target_protocol  = "http"
      target_port      = var.api_port
      certificate_name = forwarding_rule.value
    }
  }

  redirect_http_to_https = var.certificate_name != ""

  healthcheck {
    protocol                 = "http"
    port                     = var.api_port
    path                     = var.health_check_path
    check_interval_seconds   = 10
    response_timeout_seconds = 5
    healthy_threshold        = 3
    unhealthy_threshold      = 3
  }

  # The droplets must carry the tag before the load balancer selects by it.
  depends_on = [digitalocean_droplet.api]
}
