# The specification's alert rules as DigitalOcean Monitoring policies on the API droplets.
# deckhand evaluates the same thresholds itself (`deckhand alerts`) over SSH; these fire
# even when nobody runs deckhand. Policies cannot carry tags; they *target* the role tag.

locals {
  # Keyed on the channel only: the webhook URL is sensitive and may not drive a for_each.
  slack_channels = var.slack_channel == "" ? [] : [var.slack_channel]

  droplet_alerts = {
    cpu = {
      type        = "v1/insights/droplet/cpu"
      value       = var.cpu_percent
      description = "${var.name_prefix}: CPU above ${var.cpu_percent}% for ${var.window}"
    }
    memory = {
      type        = "v1/insights/droplet/memory_utilization_percent"
      value       = var.memory_percent
      description = "${var.name_prefix}: memory above ${var.memory_percent}% for ${var.window}"
    }
    disk = {
      type        = "v1/insights/droplet/disk_utilization_percent"
      value       = var.disk_percent
      description = "${var.name_prefix}: disk above ${var.disk_percent}% (prune images: deckhand prune)"
    }
  }
}

resource "digitalocean_monitor_alert" "droplet" {
  for_each = local.droplet_alerts

  type        = each.value.type
  compare     = "GreaterThan"
  value       = each.value.value
  window      = var.window
  description = each.value.description
  enabled     = true
  tags        = [var.droplet_tag]

  alerts {
    email = var.alert_emails

    dynamic "slack" {
      for_each = local.slack_channels
      content {
        channel = slack.value
        url     = var.slack_webhook_url
      }
    }
  }
}

# Failed health checks seen from outside: the public /health through the load balancer.
resource "digitalocean_uptime_check" "health" {
  count = var.uptime_check_enabled ? 1 : 0

  name    = "${var.name_prefix}-health"
  target  = var.health_check_url
  type    = startswith(var.health_check_url, "https://") ? "https" : "http"
  regions = var.uptime_regions
  enabled = true
}

resource "digitalocean_uptime_alert" "health_down" {
  count = var.uptime_check_enabled ? 1 : 0

  name     = "${var.name_prefix}: /health down"
  check_id = digitalocean_uptime_check.health[0].id
  type     = "down"
  period   = "2m"

  notifications {
    email = var.alert_emails

    dynamic "slack" {
      for_each = local.slack_channels
      content {
        channel = slack.value
        url     = var.slack_webhook_url
      }
    }
  }
}
