//! Who acts: a person at a machine, or a CI job. Recorded in labels, locks and the audit log.

/// `user@machine`, or the CI job when one is running us.
pub fn current() -> String {
    if let Ok(v) = std::env::var("DECKHAND_ACTOR")
        && !v.trim().is_empty()
    {
        return v.trim().to_string();
    }
    let machine = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown-host".into());
    if std::env::var_os("GITHUB_ACTIONS").is_some() {
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        return format!(
            "github:{}#{} ({})",
            var("GITHUB_REPOSITORY"),
            var("GITHUB_RUN_ID"),
            var("GITHUB_ACTOR")
        );
    }
    if std::env::var_os("CI").is_some() {
        return format!("ci@{machine}");
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(user_from_passwd)
        .unwrap_or_else(|| "unknown".into());
    format!("{user}@{machine}")
}

/// The name of our uid in /etc/passwd, for shells that set no USER (cron, containers).
fn user_from_passwd() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid().to_string();
    std::fs::read_to_string("/etc/passwd")
        .ok()?
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] == uid).then(|| f[0].to_string())
        })
}
