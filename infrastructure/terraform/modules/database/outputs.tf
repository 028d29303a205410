output "cluster_id" {
  description = "Id of the PostgreSQL cluster."
  value       = digitalocean_database_cluster.postgres.id
}

output "cluster_urn" {
  description = "URN of the PostgreSQL cluster (for the DigitalOcean project)."
  value       = digitalocean_database_cluster.postgres.urn
}

output "private_host" {
  description = "Hostname of the primary on the VPC."
  value       = digitalocean_database_cluster.postgres.private_host
}

output "port" {
  description = "PostgreSQL port."
  value       = digitalocean_database_cluster.postgres.port
}

output "database" {
  description = "Application database name."
  value       = digitalocean_database_db.app.name
}

output "user" {
  description = "Application role."
  value       = digitalocean_database_user.app.name
}

output "password" {
  description = "Password of the application role."
  value       = digitalocean_database_user.app.password
  sensitive   = true
}

output "private_url" {
  description = "Connection string of the application role over the VPC (TLS required)."
  value       = "postgresql://${digitalocean_database_user.app.name}:${urlencode(digitalocean_database_user.app.password)}@${digitalocean_database_cluster.postgres.private_host}:${digitalocean_database_cluster.postgres.port}/${digitalocean_database_db.app.name}?sslmode=require"
  sensitive   = true
}
