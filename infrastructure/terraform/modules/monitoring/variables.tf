variable "name_prefix" {
  description = "Prefix for names and descriptions, e.g. \"deckhand-staging\"."
  type        = string
}

variable "droplet_tag" {
  description = "Role tag of the droplets to watch (new droplets with the tag are covered automatically)."
  type        = string
}

variable "alert_emails" {
  description = "Addresses notified by the alerts (they must be verified members of the DigitalOcean team)."
  type        = list(string)
}

variable "slack_channel" {
  description = "Slack channel for alerts; empty = email only."
  type        = string
  default     = ""
}

variable "slack_webhook_url" {
  description = "Slack incoming-webhook URL (a secret: pass it as TF_VAR_slack_webhook_url)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "cpu_percent" {
  description = "CPU alert threshold (percent, sustained over window)."
  type        = number
  default     = 80
}

variable "memory_percent" {
  description = "Memory alert threshold (percent, sustained over window)."
  type        = number
  default     = 85
}

variable "disk_percent" {
  description = "Disk alert threshold (percent)."
  type        = number
  default     = 90
}

variable "window" {
  description = "How long a threshold must be exceeded: one of 5m, 10m, 30m, 1h."
  type        = string
  default     = "5m"

  validation {
    condition     = contains(["5m", "10m", "30m", "1h"], var.window)
    error_message = "window must be one of 5m, 10m, 30m, 1h."
  }
}

variable "uptime_check_enabled" {
  description = "Create an uptime check (and a \"down\" alert) on health_check_url. A plain bool, so that count is known at plan time even when the URL is not."
  type        = bool
  default     = false
}

variable "health_check_url" {
  description = "Public URL of /health, e.g. through the load balancer (used when uptime_check_enabled)."
  type        = string
  default     = ""
}

variable "uptime_regions" {
  description = "Regions the uptime check probes from."
  type        = list(string)
  default     = ["eu_west", "us_east"]
}
