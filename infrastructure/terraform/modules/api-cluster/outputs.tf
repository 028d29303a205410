output "droplet_ids" {
  description = "Ids of the API droplets."
  value       = digitalocean_droplet.api[*].id
}

output "droplet_urns" {
  description = "URNs of the API droplets (for the DigitalOcean project)."
  value       = digitalocean_droplet.api[*].urn
}

output "droplets" {
  description = "API droplets by name: public and private IPv4."
  value = {
    for d in digitalocean_droplet.api : d.name => {
      public_ipv4  = d.ipv4_address
      private_ipv4 = d.ipv4_address_private
    }
  }
}

output "public_ipv4" {
  description = "Public IPv4 of each API droplet, in droplet order."
  value       = digitalocean_droplet.api[*].ipv4_address
}

output "private_ipv4" {
  description = "VPC IPv4 of each API droplet, in droplet order."
  value       = digitalocean_droplet.api[*].ipv4_address_private
}

output "load_balancer_id" {
  description = "Id of the load balancer, or null without one."
  value       = one(digitalocean_loadbalancer.api[*].id)
}

output "load_balancer_ids" {
  description = "Ids of the load balancer as a list (empty without one), for the firewall."
  value       = digitalocean_loadbalancer.api[*].id
}

output "load_balancer_urns" {
  description = "URNs of the load balancer as a list (empty without one)."
  value       = digitalocean_loadbalancer.api[*].urn
}

output "load_balancer_ip" {
  description = "Public IP of the load balancer, or null without one."
  value       = one(digitalocean_loadbalancer.api[*].ip)
}
