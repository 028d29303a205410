output "alert_policy_ids" {
  description = "Ids of the droplet alert policies by rule (cpu, memory, disk)."
  value       = { for k, a in digitalocean_monitor_alert.droplet : k => a.id }
}

output "uptime_check_id" {
  description = "Id of the /health uptime check, or null."
  value       = one(digitalocean_uptime_check.health[*].id)
}
