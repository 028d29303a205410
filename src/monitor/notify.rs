//! Optional notifications: a Slack-compatible webhook (`{"text": ...}`) whose URL comes from the
//! environment (`DECKHAND_WEBHOOK_URL`), never from the config file. A failure to notify is
//! logged and never breaks an action.

use std::time::Duration;

pub const WEBHOOK_ENV: &str = "DECKHAND_WEBHOOK_URL";

#[derive(Clone)]
pub struct Notifier {
    url: Option<String>,
    client: Option<reqwest::Client>,
}

impl Notifier {
    pub fn from_env() -> Notifier {
        let url = std::env::var(WEBHOOK_ENV)
            .ok()
            .filter(|u| !u.trim().is_empty());
        Self::to(url)
    }

    /// A notifier for this URL (none: disabled), whatever the environment says.
    pub fn to(url: Option<String>) -> Notifier {
        // Whoever has the URL may post: masked by value in logs, errors and messages.
        if let Some(u) = &url {
            crate::redact::register_secret_url(u);
        }
        let client = url.as_ref().and_then(|_| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .ok()
        });
        Notifier { url, client }
    }

    pub fn enabled(&self) -> bool {
        self.url.is_some()
    }

    /// Sends one message; returns whether it was delivered (for tests and logs).
    pub async fn send(&self, text: &str) -> bool {
        let (Some(url), Some(client)) = (&self.url, &self.client) else {
            return false;
        };
        let body = serde_json::json!({ "text": crate::sanitize::for_slack(text) });
        match client.post(url).json(&body).send().await {
            Ok(r) if r.status().is_success() => true,
            Ok(r) => {
                tracing::warn!(
                    status = r.status().as_u16(),
                    "webhook refused the notification"
                );
                false
            }
            Err(e) => {
                // The URL itself is a secret (it authorises posting): never log it.
                // reqwest names the URL in its errors; drop it before anything formats the error.
                let e = e.without_url();
                tracing::warn!(error = %crate::redact::redact_text(&crate::util::error_chain(&e)), "webhook notification failed");
                false
            }
        }
    }
}
