//! A small partner-system client of the change feed: pulls `GET /api/v1/changes` into a
//! local JSON Lines file (one change item per line) and, run again, resumes where it stopped.
//!
//! ```sh
//! cargo run --example sync_feed -- --base-url http://127.0.0.1:8080 \
//!     --client-id ID --client-secret SECRET --out changes.jsonl [--follow]
//! ```
//!
//! The file is the only state. Its last complete line holds the `seq` to resume after, and
//! each page is appended and fsynced before the next poll, so a crash at any point loses
//! nothing and repeats nothing: lines not yet durable were not the position either. A line
//! torn by a crash (no final newline) is cut off on start and fetched again. Run one
//! instance per file. See `docs/sync.md`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use reqwest::StatusCode;
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(
    about = "Pull the TrialOps change feed into a JSON Lines file, resuming where it stopped"
)]
struct Args {
    /// The service's base URL.
    #[arg(long, env = "TRIALOPS_URL", default_value = "http://127.0.0.1:8080")]
    base_url: String,
    /// API client id (OAuth2 client credentials).
    #[arg(long, env = "TRIALOPS_CLIENT_ID")]
    client_id: String,
    /// API client secret.
    #[arg(long, env = "TRIALOPS_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    /// The JSON Lines file to append to (created if missing).
    #[arg(long, env = "TRIALOPS_SYNC_OUT")]
    out: PathBuf,
    /// Changes per request, 1..=1000.
    #[arg(long, default_value_t = 500)]
    limit: u32,
    /// Only these entity types, comma-separated (e.g. `risk,deviation`).
    #[arg(long)]
    entity_type: Option<String>,
    /// Keep polling after catching up, instead of exiting.
    #[arg(long)]
    follow: bool,
    /// Seconds between polls once caught up (with `--follow`).
    #[arg(long, default_value_t = 5)]
    interval: u64,
    /// Give up after this many failed attempts in a row (429, 5xx, network errors).
    #[arg(long, default_value_t = 10)]
    max_retries: u32,
}

/// Where the file says we are: the `seq` of its last complete line (0 for an empty or
/// new file). A torn last line (no newline: the process died while appending it) is cut
/// off, so the next append starts on a line of its own; its change is fetched again.
fn resume_position(path: &Path) -> Result<i64> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let mut content = Vec::new();
    file.read_to_end(&mut content)?;
    let complete = content
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    if complete < content.len() {
        eprintln!(
            "sync_feed: cutting a torn last line ({} bytes) off {}",
            content.len() - complete,
            path.display()
        );
        file.set_len(complete as u64)?;
        file.sync_all()?;
    }
    let Some(last) = content[..complete]
        .split(|&b| b == b'\n')
        .rfind(|line| !line.is_empty())
    else {
        return Ok(0);
    };
    // A complete line that is not a change item means someone else wrote the file:
    // guessing a position could skip changes, so stop instead.
    let item: Value = serde_json::from_slice(last)
        .with_context(|| format!("the last line of {} is not JSON", path.display()))?;
    item["seq"]
        .as_i64()
        .with_context(|| format!("the last line of {} has no seq", path.display()))
}

/// An access token and when to stop trusting it.
struct Token {
    value: String,
    renew_at: Instant,
}

struct Client {
    http: reqwest::Client,
    args: Args,
    token: Option<Token>,
}

/// A failed attempt worth repeating after a pause.
struct Retry {
    wait: Option<Duration>,
    why: String,
}

enum Outcome<T> {
    Done(T),
    Retry(Retry),
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// 429, 503 and other 5xx are worth repeating (honouring `Retry-After`); any other
/// failure is a mistake a retry will not fix.
async fn classify(response: reqwest::Response, what: &str) -> Result<Outcome<reqwest::Response>> {
    let status = response.status();
    if status.is_success() {
        return Ok(Outcome::Done(response));
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return Ok(Outcome::Retry(Retry {
            wait: retry_after(&response),
            why: format!("{what}: {status}"),
        }));
    }
    let body = response.text().await.unwrap_or_default();
    bail!("{what}: {status}: {body}")
}

impl Client {
    /// A token from the client-credentials grant; renewed a minute before it expires.
    async fn fetch_token(&mut self) -> Result<Outcome<()>> {
        let url = format!("{}/oauth/token", self.args.base_url.trim_end_matches('/'));
        let sent = self
            .http
            .post(url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.args.client_id.as_str()),
                ("client_secret", self.args.client_secret.as_str()),
            ])
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                return Ok(Outcome::Retry(Retry {
                    wait: None,
                    why: format!("token request: {e}"),
                }));
            }
        };
        let response = match classify(response, "token request").await? {
            Outcome::Done(response) => response,
            Outcome::Retry(retry) => return Ok(Outcome::Retry(retry)),
        };
        let body: Value = response.json().await.context("token answer")?;
        let value = body["access_token"]
            .as_str()
            .context("token answer without access_token")?
            .to_string();
        let lifetime = body["expires_in"].as_u64().unwrap_or(60);
        self.token = Some(Token {
            value,
            renew_at: Instant::now() + Duration::from_secs(lifetime.saturating_sub(60).max(1)),
        });
        Ok(Outcome::Done(()))
    }

    /// One page of the feed after `after`. A 401 means the token expired or was
    /// revoked: get a new one and ask once more; a second 401 is the client's end.
    async fn page(&mut self, after: i64) -> Result<Outcome<(Vec<Value>, i64)>> {
        let mut url = format!(
            "{}/api/v1/changes?after={after}&limit={}",
            self.args.base_url.trim_end_matches('/'),
            self.args.limit
        );
        if let Some(types) = &self.args.entity_type {
            url.push_str("&entity_type=");
            url.push_str(types);
        }
        let mut renewed = false;
        loop {
            if self
                .token
                .as_ref()
                .is_none_or(|t| Instant::now() >= t.renew_at)
            {
                renewed = true;
                if let Outcome::Retry(retry) = self.fetch_token().await? {
                    return Ok(Outcome::Retry(retry));
                }
            }
            let token = self
                .token
                .as_ref()
                .map(|t| t.value.clone())
                .unwrap_or_default();
            let response = match self.http.get(&url).bearer_auth(token).send().await {
                Ok(response) => response,
                Err(e) => {
                    return Ok(Outcome::Retry(Retry {
                        wait: None,
                        why: format!("feed request: {e}"),
                    }));
                }
            };
            if response.status() == StatusCode::UNAUTHORIZED && !renewed {
                eprintln!("sync_feed: 401, getting a new token");
                self.token = None;
                continue;
            }
            let response = match classify(response, "feed request").await? {
                Outcome::Done(response) => response,
                Outcome::Retry(retry) => return Ok(Outcome::Retry(retry)),
            };
            let body: Value = response.json().await.context("feed answer")?;
            let items = body["data"]
                .as_array()
                .context("feed answer without data")?
                .clone();
            let next_after = body["next_after"]
                .as_i64()
                .context("feed answer without next_after")?;
            return Ok(Outcome::Done((items, next_after)));
        }
    }

    /// `page`, repeated after 429, 5xx and network errors: waits `Retry-After` when the
    /// server names it, else 1, 2, 4 ... 60 s.
    async fn page_with_retries(&mut self, after: i64) -> Result<(Vec<Value>, i64)> {
        let mut failures = 0;
        loop {
            match self.page(after).await? {
                Outcome::Done(page) => return Ok(page),
                Outcome::Retry(retry) => {
                    failures += 1;
                    if failures > self.args.max_retries {
                        bail!("giving up after {failures} attempts: {}", retry.why);
                    }
                    let backoff = Duration::from_secs((1u64 << (failures - 1).min(6)).min(60));
                    let wait = retry.wait.unwrap_or(backoff);
                    eprintln!("sync_feed: {}; retrying in {} s", retry.why, wait.as_secs());
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// Appends the items as lines and makes them durable before the caller moves on: the
/// next position is read back from the file, so it must never run ahead of it.
fn append(file: &mut File, items: &[Value]) -> Result<()> {
    let mut buffer = Vec::new();
    for item in items {
        serde_json::to_writer(&mut buffer, item)?;
        buffer.push(b'\n');
    }
    file.write_all(&buffer)?;
    file.sync_data()?;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sync_feed: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    if !(1..=1000).contains(&args.limit) {
        bail!("--limit must be between 1 and 1000");
    }
    let mut after = resume_position(&args.out)?;
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.out)
        .with_context(|| format!("opening {}", args.out.display()))?;
    eprintln!("sync_feed: resuming after seq {after}");
    let (follow, interval, limit) = (args.follow, args.interval, args.limit as usize);
    let mut client = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        args,
        token: None,
    };
    let mut written = 0usize;
    loop {
        let (items, next_after) = client.page_with_retries(after).await?;
        append(&mut file, &items)?;
        written += items.len();
        // `next_after` may be past the last item (changes this client may not see); the
        // file still resumes from its last line, which only means asking for them again.
        after = next_after;
        if items.len() < limit {
            if !follow {
                break;
            }
            tokio::time::sleep(Duration::from_secs(interval)).await;
        }
    }
    eprintln!("sync_feed: caught up at seq {after}, {written} new changes");
    println!(
        "{}",
        serde_json::json!({"written": written, "next_after": after})
    );
    Ok(())
}
