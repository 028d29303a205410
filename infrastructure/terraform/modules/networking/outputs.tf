output "vpc_id" {
  description = "UUID of the VPC."
  value       = digitalocean_vpc.this.id
}

output "vpc_urn" {
  description = "URN of the VPC."
  value       = digitalocean_vpc.this.urn
}

output "api_firewall_id" {
  description = "Id of the API droplets' cloud firewall (CI adds and removes a temporary SSH rule on it)."
  value       = digitalocean_firewall.api.id
}
