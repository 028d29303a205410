output "cluster_id" {
  description = "Id of the Redis/Valkey cluster."
  value       = digitalocean_database_cluster.redis.id
}

output "cluster_urn" {
  description = "URN of the cluster (for the DigitalOcean project)."
  value       = digitalocean_database_cluster.redis.urn
}

output "private_host" {
  description = "Hostname on the VPC."
  value       = digitalocean_database_cluster.redis.private_host
}

output "port" {
  description = "TLS port."
  value       = digitalocean_database_cluster.redis.port
}

output "private_url" {
  description = "rediss:// connection string over the VPC (contains the password)."
  value       = digitalocean_database_cluster.redis.private_uri
  sensitive   = true
}
