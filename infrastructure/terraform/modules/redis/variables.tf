variable "name_prefix" {
  description = "Prefix for every resource name, e.g. \"deckhand-staging\"."
  type        = string
}

variable "region" {
  description = "DigitalOcean region slug; keep it the droplets' region."
  type        = string
}

variable "vpc_id" {
  description = "VPC the cluster is attached to (private network)."
  type        = string
}

variable "tags" {
  description = "Tags for the cluster (environment and project)."
  type        = list(string)
}

variable "engine" {
  description = <<-EOT
    Managed engine. DigitalOcean replaced Managed Redis with Managed Valkey (a Redis-compatible
    fork speaking the same protocol) in 2025: new clusters use "valkey". Keep "redis" only for a
    cluster created before the switch.
  EOT
  type        = string
  default     = "valkey"

  validation {
    condition     = contains(["valkey", "redis"], var.engine)
    error_message = "engine must be \"valkey\" or \"redis\"."
  }
}

variable "engine_version" {
  description = "Major engine version."
  type        = string
  default     = "8"
}

variable "size" {
  description = "Node size slug, e.g. db-s-1vcpu-1gb."
  type        = string
}

variable "node_count" {
  description = "Nodes: 1 = primary only; 2 = primary + standby."
  type        = number
  default     = 1

  validation {
    condition     = var.node_count >= 1 && var.node_count <= 2
    error_message = "A managed Redis/Valkey cluster has 1 or 2 nodes."
  }
}

variable "maintenance_day" {
  description = "Weekly maintenance window: day."
  type        = string
  default     = "sunday"
}

variable "maintenance_hour" {
  description = "Weekly maintenance window: start hour, UTC, HH:MM:SS."
  type        = string
  default     = "04:00:00"
}
