//! The app containers of a release: their environment (clear variables and the host's secrets
//! file), creation with the contract's labels, restart policy, stop, and their last log lines.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, LogsOptions, RemoveContainerOptions, StopContainerOptions,
};
use futures_util::StreamExt;

use super::ReleaseError;
use super::execute::ActionOptions;
use super::plan::DeployPlan;
use super::proxy::docker_err;
use crate::config::Service;
use crate::state::contract::{
    LABEL_COLOR, LABEL_DEPLOYED_AT, LABEL_DEPLOYED_BY, LABEL_SERVICE, LABEL_SHA, app_container,
};
use crate::transport::Host;

/// Secrets for the app: the env file on the host, read at deploy time, never logged.
pub(crate) async fn read_env_file(
    host: &Host,
    service: &Service,
) -> Result<Vec<String>, ReleaseError> {
    let out = host
        .exec(
            "sh",
            &[
                "-c",
                r#"if [ -f "$1" ]; then cat "$1"; fi"#,
                "deckhand-env",
                &service.env_file,
            ],
            None,
        )
        .await?;
    if !out.success() {
        return Err(ReleaseError::Plan {
            host: host.name().to_string(),
            message: format!(
                "cannot read the secrets file {}: {} (it must be readable by the ssh user)",
                service.env_file,
                out.stderr_text()
            ),
        });
    }
    let entries = parse_env_file(&out.stdout_text());
    // Everything in this file is secret: masked by value from now on, whatever its name.
    crate::redact::register_env_values(&entries);
    Ok(entries)
}

/// `KEY=value` lines; blank lines and `#` comments skipped; optional `export `; surrounding
/// quotes removed.
pub fn parse_env_file(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.strip_prefix("export ").unwrap_or(l))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(v);
            Some(format!("{}={v}", k.trim()))
        })
        .collect()
}

pub(super) async fn create_app(
    host: &Host,
    service: &Service,
    plan: &DeployPlan,
    opts: &ActionOptions,
) -> Result<(), ReleaseError> {
    let name = app_container(service, plan.to_color);
    // The idle color's old container (the previous rollback target) makes way for the new one.
    match host
        .docker
        .remove_container(
            &name,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            }),
        )
        .await
    {
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(e) => return Err(docker_err(host, &format!("remove the old {name}"), e)),
    }
    let mut env: Vec<String> = service
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let secrets = read_env_file(host, service).await?;
    let mut labels = HashMap::new();
    // Names only: lets a console that never read the env file mask these values in inspect.
    let secret_names: Vec<&str> = secrets
        .iter()
        .filter_map(|e| e.split_once('='))
        .map(|(n, _)| n)
        .collect();
    if !secret_names.is_empty() {
        labels.insert(
            crate::redact::LABEL_SECRET_ENV.to_string(),
            secret_names.join(","),
        );
    }
    env.extend(secrets);
    labels.insert(LABEL_SERVICE.to_string(), service.name.clone());
    labels.insert(LABEL_COLOR.to_string(), plan.to_color.as_str().to_string());
    labels.insert(LABEL_SHA.to_string(), plan.to_sha.clone());
    labels.insert(
        LABEL_DEPLOYED_AT.to_string(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    labels.insert(LABEL_DEPLOYED_BY.to_string(), opts.actor.clone());
    let port_key = format!("{}/tcp", service.app_port);
    // Published on the host's loopback only, on an ephemeral port: the console reaches /health
    // through its SSH tunnel; the public only ever reaches the proxy. No restarts until proven
    // healthy: a crash must show as a crash, not as a container that keeps coming back; set to
    // unless-stopped after the check.
    let (host_config, networking_config) = on_service_network(
        service,
        &port_key,
        PortBinding {
            host_ip: Some("127.0.0.1".into()),
            host_port: Some(String::new()),
        },
        RestartPolicyNameEnum::NO,
    );
    host.docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            }),
            ContainerCreateBody {
                image: Some(plan.image.clone()),
                env: Some(env),
                labels: Some(labels),
                exposed_ports: Some(vec![port_key]),
                stop_signal: Some("SIGTERM".into()),
                stop_timeout: i64::try_from(service.stop_timeout.as_secs()).ok(),
                host_config: Some(host_config),
                networking_config: Some(networking_config),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| docker_err(host, &format!("create {name}"), e))?;
    Ok(())
}

/// What every deckhand container shares: the service's network, one published port, and a
/// restart policy.
pub(super) fn on_service_network(
    service: &Service,
    port_key: &str,
    binding: PortBinding,
    restart: RestartPolicyNameEnum,
) -> (HostConfig, NetworkingConfig) {
    let mut ports = HashMap::new();
    ports.insert(port_key.to_string(), Some(vec![binding]));
    let mut endpoints = HashMap::new();
    endpoints.insert(service.network_name(), EndpointSettings::default());
    (
        HostConfig {
            port_bindings: Some(ports),
            network_mode: Some(service.network_name()),
            restart_policy: Some(RestartPolicy {
                name: Some(restart),
                maximum_retry_count: None,
            }),
            ..Default::default()
        },
        NetworkingConfig {
            endpoints_config: Some(endpoints),
        },
    )
}

pub(super) async fn set_restart_policy(
    host: &Host,
    name: &str,
    policy: RestartPolicyNameEnum,
) -> Result<(), ReleaseError> {
    host.docker
        .update_container(
            name,
            bollard::models::ContainerUpdateBody {
                restart_policy: Some(RestartPolicy {
                    name: Some(policy),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| docker_err(host, &format!("set the restart policy of {name}"), e))
}

pub(crate) async fn tail_logs(host: &Host, name: &str) -> String {
    let mut stream = host.docker.logs(
        name,
        Some(LogsOptions {
            stdout: true,
            stderr: true,
            tail: "20".into(),
            ..Default::default()
        }),
    );
    // A host's log lines can be any length: each is cut, and so is the whole tail.
    const MAX_LINE: usize = 2000;
    const MAX_TAIL: usize = 32 * 1024;
    let mut out = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        for line in String::from_utf8_lossy(&chunk.into_bytes()).lines() {
            if out.len() > MAX_TAIL {
                out.push_str("    [truncated]\n");
                return out;
            }
            let cut = crate::util::truncate_chars(line, MAX_LINE);
            out.push_str("    ");
            out.push_str(&crate::sanitize::for_terminal_line(
                &crate::redact::redact_text(cut),
            ));
            if cut.len() < line.len() {
                out.push_str(" [truncated]");
            }
            out.push('\n');
        }
    }
    if out.is_empty() {
        out.push_str("    (no output)\n");
    }
    out
}

pub(super) async fn stop(host: &Host, name: &str, service: &Service) -> Result<(), ReleaseError> {
    match host
        .docker
        .stop_container(
            name,
            Some(StopContainerOptions {
                t: i32::try_from(service.stop_timeout.as_secs()).ok(),
                ..Default::default()
            }),
        )
        .await
    {
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304 | 404,
            ..
        }) => Ok(()),
        Err(e) => Err(docker_err(host, &format!("stop {name}"), e)),
    }
}

pub(super) async fn stop_quietly(host: &Host, name: &str, service: &Service) {
    if let Err(e) = stop(host, name, service).await {
        tracing::warn!(error = %e, container = name, "could not stop the failed container");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_parse() {
        let v = parse_env_file(
            "# secrets\nDB_PASSWORD=hunter2\nexport TOKEN=\"abc def\"\n\nBAD LINE\nQ='x'\n",
        );
        assert_eq!(v, ["DB_PASSWORD=hunter2", "TOKEN=abc def", "Q=x"]);
    }
}
