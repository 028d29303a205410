variable "project" {
  description = "Project name: prefix of every resource name and the \"project:<name>\" tag."
  type        = string
  default     = "deckhand"
}

variable "region" {
  description = "DigitalOcean region for every resource of the environment."
  type        = string
  default     = "fra1"
}

variable "vpc_ip_range" {
  description = "VPC CIDR; unique per environment."
  type        = string
  default     = "10.20.0.0/20"
}

variable "admin_cidrs" {
  description = "Addresses allowed to SSH to the droplets (office / VPN / bastion)."
  type        = list(string)
}

variable "ssh_key_fingerprints" {
  description = "Fingerprints of SSH keys registered in DigitalOcean (root, first boot only)."
  type        = list(string)
}

variable "ops_ssh_public_keys" {
  description = "Public keys for the \"ops\" user (Ansible, sudo)."
  type        = list(string)
}

variable "deploy_ssh_public_keys" {
  description = "Public keys for the \"deploy\" user (deckhand; include the CI deploy key)."
  type        = list(string)
}

variable "droplet_count" {
  description = "API droplets behind the load balancer."
  type        = number
  default     = 2
}

variable "droplet_size" {
  description = "API droplet size."
  type        = string
  default     = "s-2vcpu-2gb"
}

variable "certificate_name" {
  description = "DigitalOcean certificate for HTTPS on the load balancer; empty = HTTP only."
  type        = string
  default     = ""
}

variable "db_size" {
  description = "PostgreSQL node size."
  type        = string
  default     = "db-s-1vcpu-2gb"
}

variable "db_node_count" {
  description = "PostgreSQL nodes (2 = primary + standby)."
  type        = number
  default     = 2
}

variable "redis_size" {
  description = "Redis/Valkey node size."
  type        = string
  default     = "db-s-1vcpu-1gb"
}

variable "alert_emails" {
  description = "Addresses notified by the monitoring alerts."
  type        = list(string)
}

variable "slack_channel" {
  description = "Slack channel for alerts; empty = email only."
  type        = string
  default     = ""
}

variable "slack_webhook_url" {
  description = "Slack webhook for alerts (set TF_VAR_slack_webhook_url; never in a file)."
  type        = string
  default     = ""
  sensitive   = true
}
