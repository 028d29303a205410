variable "name_prefix" {
  description = "Prefix for every resource name, e.g. \"deckhand-staging\"."
  type        = string
}

variable "region" {
  description = "DigitalOcean region slug, e.g. \"fra1\"."
  type        = string
}

variable "vpc_ip_range" {
  description = "Private CIDR of the VPC. Must not overlap another VPC in the account."
  type        = string
}

variable "api_droplet_tag" {
  description = "Tag carried by the API droplets; the cloud firewall and the database firewalls target it."
  type        = string
}

variable "admin_cidrs" {
  description = "CIDRs allowed to reach SSH (22/tcp): office, VPN or bastion addresses. Never 0.0.0.0/0."
  type        = list(string)

  validation {
    condition     = length(var.admin_cidrs) > 0 && !contains(var.admin_cidrs, "0.0.0.0/0") && !contains(var.admin_cidrs, "::/0")
    error_message = "admin_cidrs must list at least one address range and must not open SSH to the whole internet."
  }
}

variable "api_port" {
  description = "Public port the deckhand proxy container (S-proxy) publishes on every API droplet."
  type        = number
  default     = 3001
}

variable "load_balancer_uids" {
  description = "Load balancers allowed to reach api_port. Empty in environments without a load balancer."
  type        = list(string)
  default     = []
}

variable "api_direct_cidrs" {
  description = "CIDRs allowed to reach api_port directly (only for environments without a load balancer, e.g. dev)."
  type        = list(string)
  default     = []
}

variable "database_cluster_ids" {
  description = "Managed database clusters (map of a static name to cluster id) that only the API droplets may reach."
  type        = map(string)
  default     = {}
}
