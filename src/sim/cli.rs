//! Command line of `edi-bridge sim`: serve the emulator until shutdown, or with `send-webhook`
//! sign a PO Create event the way Ingram does and POST it to the bridge's webhook. Secrets come
//! from named environment variables, never from flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio_util::sync::CancellationToken;

use super::{parse_faults, SimConfig, SimHandle};

/// `edi-bridge sim [options] [send-webhook ...]`.
#[derive(clap::Args, Debug, Clone)]
pub struct SimArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is logged).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// OAuth2 client id the token endpoint accepts.
    #[arg(long, default_value = "sim-client")]
    pub client_id: String,
    /// Environment variable holding the client secret the token endpoint accepts.
    #[arg(long, default_value = "EDI_BRIDGE_CLIENT_SECRET")]
    pub client_secret_env: String,
    /// If set, `IM-PartnerID` must equal it.
    #[arg(long)]
    pub partner_id: Option<String>,
    /// Fault script, consumed one per PO call: e.g. `503,503,429,401,delay:2000,drop`.
    #[arg(long)]
    pub faults: Option<String>,
    /// Delay added to every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Probability in [0, 1] of a random 503 per PO call.
    #[arg(long, default_value_t = 0.0)]
    pub failure_rate: f64,
    /// Seed for the random 503s.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Enforce a rate limit of this many PO calls per `--rate-limit-window-secs` (429 with
    /// `X-RateLimit-*` and `Retry-After` beyond it).
    #[arg(long)]
    pub rate_limit: Option<u32>,
    /// The rate limit's window, in seconds.
    #[arg(long, default_value_t = 60)]
    pub rate_limit_window_secs: u64,
    /// Append every call as one JSON line to this file.
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// `expires_in` of issued tokens, in seconds.
    #[arg(long, default_value_t = 86_399)]
    pub token_ttl_secs: u64,
    /// Send `expires_in` as a string, as Ingram sometimes does.
    #[arg(long)]
    pub expires_in_as_string: bool,
    /// Path prefix of the vendor API.
    #[arg(long, default_value = "/vendors/v1")]
    pub base_path: String,
    /// Path of the token endpoint.
    #[arg(long, default_value = "/oauth/oauth30/token")]
    pub token_path: String,
    #[command(subcommand)]
    pub command: Option<SimCommand>,
}

/// What `sim` does instead of serving.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum SimCommand {
    /// Sign a webhook event (x-hub-signature over its event id) and POST it.
    SendWebhook(SendWebhookArgs),
}

/// `edi-bridge sim send-webhook FILE.json --url URL`.
#[derive(clap::Args, Debug, Clone)]
pub struct SendWebhookArgs {
    /// The event JSON to send, byte for byte.
    pub file: PathBuf,
    /// The bridge's webhook URL.
    #[arg(long)]
    pub url: String,
    /// Environment variable holding the webhook secret.
    #[arg(long, default_value = "EDI_BRIDGE_WEBHOOK_SECRET")]
    pub secret_env: String,
    /// Event id to sign; default: the event's `eventid` or `eventId`.
    #[arg(long)]
    pub event_id: Option<String>,
}

/// Serve the emulator until `shutdown`, or run the `send-webhook` subcommand.
pub async fn run(args: SimArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    if let Some(SimCommand::SendWebhook(send)) = &args.command {
        return run_send_webhook(send).await;
    }
    let client_secret = std::env::var(&args.client_secret_env).with_context(|| {
        format!(
            "environment variable {} (the client secret) is not set",
            args.client_secret_env
        )
    })?;
    let faults = match &args.faults {
        Some(script) => parse_faults(script).context("bad --faults")?,
        None => Vec::new(),
    };
    if !(0.0..=1.0).contains(&args.failure_rate) {
        bail!("--failure-rate must be between 0 and 1");
    }
    let config = SimConfig {
        listen: args.listen,
        client_id: args.client_id,
        client_secret,
        partner_id: args.partner_id,
        token_ttl_secs: args.token_ttl_secs,
        expires_in_as_string: args.expires_in_as_string,
        base_path: args.base_path,
        token_path: args.token_path,
        faults,
        latency: Duration::from_millis(args.latency_ms),
        failure_rate: args.failure_rate,
        seed: args.seed,
        record: args.record,
        rate_limit: args.rate_limit.map(|requests| super::RateLimit {
            requests,
            per: Duration::from_secs(args.rate_limit_window_secs.max(1)),
        }),
        ..SimConfig::default()
    };
    let sim = SimHandle::start(config, shutdown)
        .await
        .context("cannot start the ingram emulator")?;
    tracing::info!(
        listen = %sim.addr(),
        base_url = %sim.base_url(),
        token_url = %sim.token_url(),
        "Ingram emulator listening."
    );
    sim.stopped().await.context("ingram emulator failed")?;
    tracing::info!("Ingram emulator stopped.");
    Ok(())
}

/// The `send-webhook` subcommand: prints the status and body; non-2xx is an error.
async fn run_send_webhook(args: &SendWebhookArgs) -> anyhow::Result<()> {
    let secret = std::env::var(&args.secret_env).with_context(|| {
        format!(
            "environment variable {} (the webhook secret) is not set",
            args.secret_env
        )
    })?;
    let body = tokio::fs::read(&args.file)
        .await
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let event_id = match &args.event_id {
        Some(id) => id.clone(),
        None => event_id_of(&body).with_context(|| {
            format!(
                "{} has no eventid or eventId: pass --event-id",
                args.file.display()
            )
        })?,
    };
    let (status, text) = send_webhook(&args.url, secret.as_bytes(), &body, &event_id).await?;
    println!("{status}");
    println!("{text}");
    if !(200..300).contains(&status) {
        bail!("webhook answered {status}");
    }
    Ok(())
}

/// The event id of a webhook body: `eventid` or `eventId` at the top level.
pub fn event_id_of(body: &[u8]) -> anyhow::Result<String> {
    let value: serde_json::Value = serde_json::from_slice(body).context("event is not json")?;
    ["eventid", "eventId"]
        .iter()
        .find_map(|k| value.get(*k).and_then(|v| v.as_str()))
        .map(str::to_owned)
        .context("no eventid or eventId")
}

/// POST `body` to `url` signed like Ingram (`x-hub-signature` over `event_id`); returns the
/// status and body, whatever the status.
pub async fn send_webhook(
    url: &str,
    secret: &[u8],
    body: &[u8],
    event_id: &str,
) -> anyhow::Result<(u16, String)> {
    let signature = crate::ingram::signature::sign(secret, event_id);
    let headers = [
        ("content-type", "application/json"),
        ("x-hub-signature", signature.as_str()),
    ];
    crate::ingram::api::post_bytes(url, &headers, body.to_vec(), Duration::from_secs(30))
        .await
        .with_context(|| format!("cannot post the webhook to {url}"))
}
