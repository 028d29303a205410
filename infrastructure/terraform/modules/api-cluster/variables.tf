variable "name_prefix" {
  description = "Prefix for every resource name, e.g. \"deckhand-staging\"."
  type        = string
}

variable "region" {
  description = "DigitalOcean region slug."
  type        = string
}

variable "vpc_id" {
  description = "VPC the droplets and the load balancer join."
  type        = string
}

variable "droplet_count" {
  description = "Number of API droplets. deckhand deploys to them host by host."
  type        = number

  validation {
    condition     = var.droplet_count >= 1
    error_message = "droplet_count must be at least 1."
  }
}

variable "droplet_size" {
  description = "Droplet size slug, e.g. s-1vcpu-2gb."
  type        = string
}

variable "image" {
  description = "Base image slug. Ubuntu LTS: Docker CE and Ansible's roles are tested on it."
  type        = string
  default     = "ubuntu-24-04-x64"
}

variable "ssh_key_fingerprints" {
  description = "DigitalOcean SSH keys (fingerprints or ids) installed for root at creation, used only until Ansible disables root login."
  type        = list(string)

  validation {
    condition     = length(var.ssh_key_fingerprints) > 0
    error_message = "At least one SSH key is required: droplets without one get a mailed root password."
  }
}

variable "ops_ssh_public_keys" {
  description = "Public keys of the people who run Ansible (user \"ops\", passwordless sudo)."
  type        = list(string)
}

variable "deploy_ssh_public_keys" {
  description = "Public keys allowed to log in as \"deploy\" (docker group, no sudo): operators running deckhand and the CI deploy key."
  type        = list(string)
}

variable "droplet_tag" {
  description = "Role tag (unique per environment) that the firewall, the load balancer and the alerts target."
  type        = string
}

variable "tags" {
  description = "Environment and project tags, added to every droplet."
  type        = list(string)
}

variable "backups" {
  description = "Enable DigitalOcean's weekly droplet backups."
  type        = bool
  default     = false
}

variable "api_port" {
  description = "Public port the deckhand proxy publishes on each droplet (the load balancer's target)."
  type        = number
  default     = 3001
}

variable "load_balancer_enabled" {
  description = "Put a regional load balancer in front of the droplets."
  type        = bool
  default     = false
}

variable "load_balancer_size_unit" {
  description = "Load balancer size in nodes (1 node is about 10k concurrent connections)."
  type        = number
  default     = 1
}

variable "health_check_path" {
  description = "Path the load balancer probes on api_port; deckhand's proxy forwards it to the live color."
  type        = string
  default     = "/health"
}

variable "certificate_name" {
  description = "Name of a DigitalOcean certificate for HTTPS on the load balancer; empty = HTTP only."
  type        = string
  default     = ""
}
