//! The `trialops` binary: `serve`, `migrate`, `clients create|list|revoke`,
//! `keys encrypt|rewrap|rotate|new-encryption-key`, `openapi`, `demo`.

use std::net::TcpListener;
use std::process::ExitCode;

use anyhow::Context;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, Subcommand};
use serde_json::json;
use trialops::domain::ids::{ClientId, SiteId, StudyId, VendorId};

use trialops::audit::WriteContext;
use trialops::auth::clients::{NewClientRequest, register};
use trialops::auth::encryption::{self, KeyEncryptionKey};
use trialops::config::Settings;
use trialops::db;
use trialops::domain::cursor::PageRequest;
use trialops::domain::enums::Role;
use trialops::{api, diagnose, startup, telemetry};

#[derive(Parser)]
#[command(
    name = "trialops",
    version,
    about = "TrialOps: the operational backbone of a clinical trial"
)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (creates and migrates the database first; prints a first admin
    /// client if there is none).
    Serve,
    /// Create the database if missing, apply migrations, and exit.
    Migrate,
    /// Manage API clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Manage the token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print the OpenAPI document.
    Openapi,
    /// Load a demo portfolio (3 studies, 60 sites, two years of enrollment, budgets,
    /// risks, deviations) through the normal write path; creates and migrates the database
    /// first. A second run adds nothing.
    Demo,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Seal every signing key stored in plain form under TRIALOPS_KEY_ENCRYPTION_KEY.
    Encrypt,
    /// Move every sealed signing key from TRIALOPS_KEY_ENCRYPTION_KEY to
    /// TRIALOPS_NEW_KEY_ENCRYPTION_KEY (then make the new one TRIALOPS_KEY_ENCRYPTION_KEY).
    Rewrap {
        #[arg(long, env = "TRIALOPS_NEW_KEY_ENCRYPTION_KEY", hide_env_values = true)]
        new_key: String,
    },
    /// Publish a new signing key; every instance signs with it a moment later, and the
    /// current keys retire once their last token has expired.
    Rotate,
    /// Print a new random encryption key (32 bytes, base64) for TRIALOPS_KEY_ENCRYPTION_KEY.
    NewEncryptionKey,
}

#[derive(Subcommand)]
enum ClientsCommand {
    /// Create a client; prints {"client_id", "client_secret"} as one JSON line.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// A study a `cro` client works on (repeat for several).
        #[arg(long = "study")]
        studies: Vec<StudyId>,
        /// A site a `site` client reports for (repeat for several).
        #[arg(long = "site")]
        sites: Vec<SiteId>,
        /// The vendor a `vendor` client speaks for.
        #[arg(long)]
        vendor: Option<VendorId>,
    },
    /// List clients as JSON lines (never a secret).
    List {
        /// Include revoked clients.
        #[arg(long)]
        all: bool,
    },
    /// Revoke a client: no new tokens, and its current tokens stop working.
    Revoke { id: ClientId },
}

fn parse_role(value: &str) -> Result<Role, String> {
    value
        .parse()
        .map_err(|_| "one of admin, sponsor, cro, site, vendor, auditor, analyst".to_string())
}

/// Large blocks go back to the system when freed. glibc's malloc serves a block above its
/// mmap threshold with its own mapping, unmapped on free, but raises the threshold to the
/// size of each such block it frees: after the first token request, Argon2's 19 MiB block
/// (one per secret check) came from the heap and stayed resident, 20 MiB of the idle RSS
/// (51.7 MiB after token requests with the threshold fixed, 71.7 without; issue 9's memory
/// goal). Setting the threshold explicitly turns that adjustment off. 4 MiB rather than the
/// default 128 KiB: a response buffer or a page of rows stays in the heap, reused without a
/// system call; only blocks like Argon2's get mappings of their own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_malloc_mmap_threshold_fixed() {
    const THRESHOLD: libc::c_int = 4 * 1024 * 1024;
    // SAFETY: mallopt only sets an allocator parameter (it takes the arena lock itself); no
    // memory is touched and no pointer is passed.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_malloc_mmap_threshold_fixed() {}

#[actix_web::main]
async fn main() -> ExitCode {
    keep_malloc_mmap_threshold_fixed();
    // A missing .env is normal; the environment alone is enough.
    let _ = dotenvy::dotenv();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return refuse_arguments(error),
    };
    telemetry::init(cli.settings.log_format == "json");
    let settings = cli.settings.clone();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line that says what to change; the whole chain and a backtrace only for
            // whoever asked for them.
            eprintln!("error: {}", diagnose::explain(&error, &settings));
            if std::env::var("RUST_BACKTRACE").is_ok_and(|v| v != "0") {
                eprintln!("{error:?}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Openapi => {
            print!("{}", api::document::openapi_json());
            Ok(())
        }
        Command::Migrate => {
            db::create_database_if_missing(&cli.settings.database_url).await?;
            let applied = db::run_migrations(&cli.settings.database_url).await?;
            eprintln!("database ready; {} migration(s) applied", applied.len());
            Ok(())
        }
        Command::Serve => serve(cli.settings).await,
        Command::Clients(command) => clients(cli.settings, command).await,
        Command::Keys(command) => keys(cli.settings, command).await,
        Command::Demo => demo(cli.settings).await,
    }
}

async fn demo(settings: Settings) -> anyhow::Result<()> {
    let state = startup::prepare(&settings).await?;
    let mut conn = state.db.get().await.context("connecting to the database")?;
    let started = std::time::Instant::now();
    let today = chrono::Utc::now().date_naive();
    let outcome = trialops::demo::load(&mut conn, today)
        .await
        .map_err(describe)?;
    // Give the new audit events their feed positions now, as a running service would.
    db::seals::seal_committed(&mut conn).await?;
    let elapsed = started.elapsed().as_secs_f64();
    match &outcome {
        trialops::demo::Outcome::Loaded(loaded) => {
            eprintln!(
                "Demo portfolio loaded in {elapsed:.1} s: {} studies, {} sites, {} vendors, \
                 {} weekly enrollment reports, {} milestones, {} budget lines with {} expenses, \
                 {} risks ({} escalated), {} deviations.",
                loaded.studies.len(),
                loaded.sites,
                loaded.vendors,
                loaded.enrollment_reports,
                loaded.milestones,
                loaded.budget_lines,
                loaded.expenses,
                loaded.risks,
                loaded.escalated_risks,
                loaded.deviations,
            );
            eprintln!(
                "Look at GET /api/v1/metrics/portfolio, then a study's /metrics, \
                 /enrollment-curve (Accept: image/svg+xml draws it), /enrollment-forecast and \
                 /signals; every list and metric also answers Accept: text/csv."
            );
            for study in &loaded.studies {
                eprintln!("  {} {}", study.id, study.protocol_number);
            }
        }
        trialops::demo::Outcome::AlreadyLoaded { studies } => {
            let numbers: Vec<&str> = studies.iter().map(|s| s.protocol_number.as_str()).collect();
            eprintln!(
                "The demo portfolio is already loaded ({}): nothing added.",
                numbers.join(", ")
            );
        }
    }
    println!("{}", serde_json::to_string(&outcome)?);
    Ok(())
}

async fn keys(settings: Settings, command: KeysCommand) -> anyhow::Result<()> {
    if let KeysCommand::NewEncryptionKey = command {
        println!("{}", KeyEncryptionKey::generate_base64());
        return Ok(());
    }
    let state = startup::prepare(&settings).await?;
    let mut conn = state.db.get().await.context("connecting to the database")?;
    let current = || {
        state.tokens.source.encryption.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "{} is not set: there is no key to encrypt with",
                encryption::VARIABLE
            )
        })
    };
    match command {
        KeysCommand::Encrypt => {
            let sealed = trialops::auth::keys::encrypt_plain(&mut conn, &current()?).await?;
            eprintln!("{sealed} secret(s) encrypted (signing keys, webhook secrets, kept answers)");
        }
        KeysCommand::Rewrap { new_key } => {
            let new = KeyEncryptionKey::from_base64(&new_key, encryption::NEW_VARIABLE)?;
            let moved = trialops::auth::keys::rewrap(&mut conn, &current()?, &new).await?;
            eprintln!(
                "{moved} secret(s) now sealed under the new key: set {} to it",
                encryption::VARIABLE
            );
        }
        KeysCommand::Rotate => {
            let ctx = WriteContext::command_line("rotated with trialops keys rotate");
            let rotation = trialops::auth::keys::rotate(&mut conn, &ctx, &state.tokens.source)
                .await
                .map_err(describe)?;
            println!("{}", serde_json::to_string(&rotation)?);
        }
        KeysCommand::NewEncryptionKey => {}
    }
    Ok(())
}

/// A malformed setting in one line naming its environment variable (clap names only the
/// flag, and most people set these through the environment).
fn refuse_arguments(error: clap::Error) -> ExitCode {
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) || !matches!(
        error.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        error.exit()
    }
    let flag = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(flag)) => flag.clone(),
        _ => error.exit(),
    };
    let long = flag
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_start_matches("--");
    let env = Cli::command()
        .get_arguments()
        .find(|arg| arg.get_long() == Some(long))
        .and_then(|arg| arg.get_env().map(|env| env.to_string_lossy().into_owned()));
    let value = match error.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(value)) => value.clone(),
        _ => String::new(),
    };
    let rendered = error.to_string();
    let reason = rendered
        .lines()
        .next()
        .and_then(|first| first.rsplit(": ").next())
        .unwrap_or("invalid value");
    match env {
        Some(env) => {
            eprintln!("error: {env}={value:?} is malformed ({reason}); fix {env} or {flag}")
        }
        None => eprintln!("error: {flag} {value:?} is malformed ({reason})"),
    }
    ExitCode::from(2)
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let state = startup::prepare(&settings).await?;
    let mut conn = state
        .background_db
        .get()
        .await
        .context("connecting to the database")?;
    if db::clients::count_active_admins(&mut conn).await? == 0 {
        let request = NewClientRequest {
            name: "first admin".into(),
            role: Role::Admin,
            studies: vec![],
            sites: vec![],
            vendor: None,
        };
        let ctx = WriteContext::command_line("first start: no admin client existed");
        let (client, secret) = register(&mut conn, &ctx, request)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        eprintln!(
            "No admin client existed, so one was created. Keep its secret: it is shown only now."
        );
        println!(
            "{}",
            json!({"client_id": client.id, "client_secret": secret})
        );
    }
    drop(conn);
    let listener =
        TcpListener::bind(&settings.bind).with_context(|| format!("binding {}", settings.bind))?;
    let address = listener.local_addr()?;
    let metrics = match settings.metrics_bind {
        Some(address) => {
            let listener = TcpListener::bind(address)
                .with_context(|| format!("binding TRIALOPS_METRICS_BIND {address}"))?;
            Some(trialops::operations::run(listener, state.clone())?)
        }
        None => None,
    };
    let server = startup::run(listener, state)?;
    if let Some(metrics) = metrics {
        actix_web::rt::spawn(metrics);
        if let Some(address) = settings.metrics_bind {
            eprintln!("Prometheus metrics: http://{address}/metrics");
        }
    }
    let base = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    eprintln!("TrialOps listening on {base}");
    eprintln!("Swagger UI: {base}/swagger-ui/");
    tracing::info!(%address, "listening");
    server.await?;
    tracing::info!("stopped");
    Ok(())
}

async fn clients(settings: Settings, command: ClientsCommand) -> anyhow::Result<()> {
    let state = startup::prepare(&settings).await?;
    let mut conn = state.db.get().await.context("connecting to the database")?;
    match command {
        ClientsCommand::Create {
            name,
            role,
            studies,
            sites,
            vendor,
        } => {
            let ctx = WriteContext::command_line("created with trialops clients create");
            let request = NewClientRequest {
                name,
                role,
                studies,
                sites,
                vendor,
            };
            let (client, secret) = register(&mut conn, &ctx, request).await.map_err(describe)?;
            println!(
                "{}",
                json!({"client_id": client.id, "client_secret": secret})
            );
        }
        ClientsCommand::List { all } => {
            let mut page = PageRequest {
                limit: 1000,
                after: None,
                updated_since: None,
                include_deleted: all,
            };
            loop {
                let listed = db::clients::list(&mut conn, &page).await?;
                for client in &listed.data {
                    println!("{}", serde_json::to_string(client)?);
                }
                match (listed.next_cursor, listed.data.last()) {
                    (Some(_), Some(last)) => page.after = Some(last.id.uuid()),
                    _ => break,
                }
            }
        }
        ClientsCommand::Revoke { id } => {
            let ctx = WriteContext::command_line("revoked with trialops clients revoke");
            db::clients::revoke(&mut conn, &ctx, id)
                .await
                .map_err(describe)?;
            eprintln!("client {id} revoked");
        }
    }
    Ok(())
}

/// A refused CLI request, said in words (with the field errors of a 422).
fn describe(error: trialops::error::ApiError) -> anyhow::Error {
    let problem = error.problem();
    let fields: Vec<String> = problem
        .errors
        .unwrap_or_default()
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect();
    anyhow::anyhow!(
        "{}: {} {}",
        problem.title,
        problem.detail,
        fields.join("; ")
    )
}
