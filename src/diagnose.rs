//! Start-up failures said in one plain line: what was refused, and which setting to change.
//!
//! The errors come from several layers (tokio-postgres through diesel, the socket, clap) and
//! only their text says what happened, so the cause is recognised from the chain's messages.
//! What is not recognised is still one line: the chain joined with `: `.

use std::io::ErrorKind;

use crate::config::Settings;

/// One line for an error that stopped the service from starting.
pub fn explain(error: &anyhow::Error, settings: &Settings) -> String {
    let chain: Vec<String> = error.chain().map(|cause| cause.to_string()).collect();
    let text = chain.join(": ").to_lowercase();
    let target = DatabaseTarget::of(&settings.database_url);
    let addr_in_use = error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == ErrorKind::AddrInUse)
    }) || text.contains("address already in use");
    let (variable, address) = match settings.metrics_bind {
        Some(metrics) if text.contains("trialops_metrics_bind") => {
            ("TRIALOPS_METRICS_BIND", metrics.to_string())
        }
        _ => ("TRIALOPS_BIND", settings.bind.clone()),
    };
    if addr_in_use {
        return format!(
            "port already in use: {address} is taken by another process; stop it or set {variable} to a free address"
        );
    }
    if text.contains("binding ") {
        return format!(
            "cannot listen on {:?} ({}); set TRIALOPS_BIND to an address such as 127.0.0.1:8080",
            settings.bind,
            chain
                .last()
                .map(String::as_str)
                .unwrap_or("invalid address")
        );
    }
    if text.contains("database_url is not a url") || text.contains("database_url names no") {
        return "DATABASE_URL is malformed; set it like postgres://user:password@host:5432/trialops"
            .into();
    }
    if text.contains("password authentication failed") || text.contains("invalid password") {
        return format!(
            "PostgreSQL at {} rejected the password of user {}; fix the password in DATABASE_URL",
            target.server, target.user
        );
    }
    if text.contains("permission denied to create database") {
        return format!(
            "database {} does not exist and user {} may not create it; create it (createdb {}) or set DATABASE_URL to an existing database",
            target.database, target.user, target.database
        );
    }
    if text.contains("does not exist") && text.contains("database") {
        return format!(
            "database {} does not exist on {}; create it or set DATABASE_URL to an existing database",
            target.database, target.server
        );
    }
    if text.contains("role") && text.contains("does not exist") {
        return format!(
            "PostgreSQL at {} has no user {}; set the user in DATABASE_URL",
            target.server, target.user
        );
    }
    // diesel keeps only tokio-postgres's top message ("error connecting to server"), not
    // its cause: one TCP connection tells a refusal from a host that cannot be reached.
    if text.contains("connection refused")
        || (text.contains("error connecting to server") && target.refuses())
    {
        return format!(
            "PostgreSQL refused the connection at {} (is it running?); start it or set DATABASE_URL",
            target.server
        );
    }
    let unreachable = [
        "failed to lookup address",
        "name or service not known",
        "timed out",
        "no route to host",
        "network is unreachable",
        "error connecting to server",
    ];
    if unreachable.iter().any(|needle| text.contains(needle)) {
        return format!(
            "PostgreSQL at {} cannot be reached ({}); check the host and port in DATABASE_URL",
            target.server,
            chain.last().map(String::as_str).unwrap_or("unreachable")
        );
    }
    chain.join(": ").replace('\n', " ")
}

/// The parts of `DATABASE_URL` worth naming in a message (never the password).
struct DatabaseTarget {
    server: String,
    user: String,
    database: String,
}

impl DatabaseTarget {
    /// Whether the server's address actively refuses a TCP connection (nothing listens).
    fn refuses(&self) -> bool {
        use std::net::ToSocketAddrs;
        let Ok(mut addresses) = self.server.to_socket_addrs() else {
            return false;
        };
        addresses.next().is_some_and(|address| {
            std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(2))
                .is_err_and(|e| e.kind() == ErrorKind::ConnectionRefused)
        })
    }

    fn of(database_url: &str) -> Self {
        match url::Url::parse(database_url) {
            Ok(url) => Self {
                server: format!(
                    "{}:{}",
                    url.host_str().unwrap_or("localhost"),
                    url.port().unwrap_or(5432)
                ),
                user: if url.username().is_empty() {
                    "(default)".into()
                } else {
                    url.username().to_string()
                },
                database: url.path().trim_start_matches('/').to_string(),
            },
            Err(_) => Self {
                server: "(unparsable DATABASE_URL)".into(),
                user: "(unknown)".into(),
                database: "(unknown)".into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn settings() -> Settings {
        Settings::for_database("postgres://alice:secret@db.example:5433/trials")
    }

    fn line(error: anyhow::Error) -> String {
        explain(&error, &settings())
    }

    #[test]
    fn a_wrong_password_names_the_user_and_the_variable_never_the_password() {
        let error = anyhow::anyhow!("password authentication failed for user \"alice\"")
            .context("connecting to postgres://alice:secret@db.example:5433/postgres");
        let line = line(error);
        assert!(
            line.contains("rejected the password of user alice"),
            "{line}"
        );
        assert!(line.contains("DATABASE_URL"), "{line}");
        assert!(!line.contains("secret"), "{line}");
    }

    #[test]
    fn each_cause_names_its_variable() {
        let refused =
            anyhow::anyhow!("error connecting to server: Connection refused (os error 111)");
        assert!(line(refused).contains("refused the connection at db.example:5433"));
        let create = anyhow::anyhow!("permission denied to create database")
            .context("creating the database");
        assert!(line(create).contains("database trials does not exist and user alice"));
        let in_use = anyhow::Error::new(std::io::Error::from(ErrorKind::AddrInUse))
            .context("binding 127.0.0.1:0");
        assert!(line(in_use).contains("TRIALOPS_BIND"));
        let malformed =
            anyhow::anyhow!("relative URL without a base").context("DATABASE_URL is not a URL");
        assert!(line(malformed).starts_with("DATABASE_URL is malformed"));
    }

    #[test]
    fn an_unknown_error_is_still_one_line() {
        let error = anyhow::anyhow!("first\nsecond").context("outer");
        assert_eq!(line(error), "outer: first second");
    }
}
