output "environment" {
  description = "Environment name, as in deckhand.toml ([env.<name>]) and the Ansible inventory."
  value       = local.environment
}

output "api_droplets" {
  description = "API droplets by name: public and private IPv4."
  value       = module.api_cluster.droplets
}

output "api_public_ipv4" {
  description = "Public IPv4 of the API droplets."
  value       = module.api_cluster.public_ipv4
}

output "api_private_ipv4" {
  description = "VPC IPv4 of the API droplets."
  value       = module.api_cluster.private_ipv4
}

output "deckhand_hosts" {
  description = "SSH destinations for deckhand's [env.dev] hosts (see scripts/deckhand-hosts.py)."
  value       = [for ip in module.api_cluster.public_ipv4 : "${local.deploy_user}@${ip}"]
}

output "deckhand_protected" {
  description = "Whether deckhand should ask for type-to-confirm on this environment."
  value       = false
}

output "public_url" {
  description = "Base URL of the service: the droplet's proxy port (reachable from api_direct_cidrs only)."
  value       = "http://${module.api_cluster.public_ipv4[0]}:${local.api_port}"
}

output "api_firewall_id" {
  description = "Cloud firewall of the API droplets (CI opens SSH for its runner's address on it during a deploy)."
  value       = module.networking.api_firewall_id
}

output "vpc_id" {
  description = "VPC of the environment."
  value       = module.networking.vpc_id
}

output "database_private_host" {
  description = "PostgreSQL host on the VPC."
  value       = module.database.private_host
}

output "database_url" {
  description = "PostgreSQL connection string of the application role (goes into /etc/deckhand/<service>.env via the Ansible vault)."
  value       = module.database.private_url
  sensitive   = true
}

output "redis_private_host" {
  description = "Redis/Valkey host on the VPC."
  value       = module.redis.private_host
}

output "redis_url" {
  description = "Redis/Valkey connection string (rediss://, contains the password)."
  value       = module.redis.private_url
  sensitive   = true
}
