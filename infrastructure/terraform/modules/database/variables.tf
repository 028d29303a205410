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

variable "postgres_version" {
  description = "Major PostgreSQL version."
  type        = string
  default     = "16"
}

variable "size" {
  description = "Node size slug, e.g. db-s-1vcpu-1gb."
  type        = string
}

variable "node_count" {
  description = "Nodes in the cluster: 1 = primary only; 2 = primary + standby (automatic failover)."
  type        = number

  validation {
    condition     = var.node_count >= 1 && var.node_count <= 3
    error_message = "A managed PostgreSQL cluster has 1 to 3 nodes."
  }
}

variable "database_name" {
  description = "Application database created in the cluster."
  type        = string
  default     = "app"
}

variable "database_user" {
  description = "Application role (the cluster's doadmin role is kept for administration only)."
  type        = string
  default     = "app"
}

variable "maintenance_day" {
  description = "Weekly maintenance window: day."
  type        = string
  default     = "sunday"
}

variable "maintenance_hour" {
  description = "Weekly maintenance window: start hour, UTC, HH:MM:SS."
  type        = string
  default     = "03:00:00"
}
