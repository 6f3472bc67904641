//! Server-side request forgery guard: a webhook may only call public addresses.
//!
//! A URL is checked when it is registered (422), and again on every connection: the HTTP
//! client resolves names through [`PublicResolver`], so a name that later resolves to an
//! internal address (DNS rebinding) is refused at send time too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Whether `ip` is an address on the public internet: not loopback, private, link-local,
/// shared (carrier-grade NAT), documentation, unspecified, broadcast or multicast.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let shared = a == 100 && (64..128).contains(&b);
    let reserved = a >= 240 || a == 0;
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || shared
        || reserved)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let unique_local = first & 0xfe00 == 0xfc00;
    let link_local = first & 0xffc0 == 0xfe80;
    let documentation = first == 0x2001 && ip.segments()[1] == 0x0db8;
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || unique_local
        || link_local
        || documentation)
}

/// Why a webhook URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    #[error("must be an absolute http or https URL")]
    NotHttp,
    #[error("must not carry a user name or password")]
    Credentials,
    #[error("host {0} does not resolve")]
    Unresolvable(String),
    #[error(
        "resolves to a loopback, private or link-local address ({0}); only public addresses may receive webhooks"
    )]
    NotPublic(IpAddr),
}

/// Parses and checks a webhook URL; with `allow_private` only its form is checked.
pub async fn check_url(raw: &str, allow_private: bool) -> Result<Url, UrlRefusal> {
    let url = Url::parse(raw).map_err(|_| UrlRefusal::NotHttp)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlRefusal::NotHttp);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefusal::Credentials);
    }
    let host = url.host().ok_or(UrlRefusal::NotHttp)?.to_owned();
    if allow_private {
        return Ok(url);
    }
    let addresses: Vec<IpAddr> = match host {
        Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        Host::Domain(name) => resolve(&name)
            .await
            .map_err(|_| UrlRefusal::Unresolvable(name.clone()))?
            .into_iter()
            .map(|a| a.ip())
            .collect(),
    };
    if addresses.is_empty() {
        return Err(UrlRefusal::Unresolvable(
            url.host_str().unwrap_or("").into(),
        ));
    }
    // One internal address is enough to refuse: the client could pick it.
    match addresses.into_iter().find(|ip| !is_public(*ip)) {
        Some(ip) => Err(UrlRefusal::NotPublic(ip)),
        None => Ok(url),
    }
}

async fn resolve(name: &str) -> std::io::Result<Vec<SocketAddr>> {
    Ok(tokio::net::lookup_host((name, 0)).await?.collect())
}

/// Name resolution for webhook sends that drops every non-public address.
#[derive(Debug, Clone, Copy)]
pub struct PublicResolver;

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let public: Vec<SocketAddr> = resolve(name.as_str())
                .await?
                .into_iter()
                .filter(|a| is_public(a.ip()))
                .collect();
            if public.is_empty() {
                return Err(format!("{} has no public address", name.as_str()).into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_not_public() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(internal.parse().unwrap()), "{internal}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[actix_web::test]
    async fn urls_are_checked_for_form_and_address() {
        assert_eq!(
            check_url("ftp://example.com/x", false).await,
            Err(UrlRefusal::NotHttp)
        );
        assert_eq!(check_url("not a url", true).await, Err(UrlRefusal::NotHttp));
        assert_eq!(
            check_url("https://u:p@example.com/", true).await,
            Err(UrlRefusal::Credentials)
        );
        assert!(matches!(
            check_url("http://127.0.0.1:9/hook", false).await,
            Err(UrlRefusal::NotPublic(_))
        ));
        assert!(matches!(
            check_url("http://[::1]/hook", false).await,
            Err(UrlRefusal::NotPublic(_))
        ));
        assert!(matches!(
            check_url("http://localhost/hook", false).await,
            Err(UrlRefusal::NotPublic(_))
        ));
        assert!(check_url("http://127.0.0.1:9/hook", true).await.is_ok());
        assert!(check_url("https://8.8.8.8/hook", false).await.is_ok());
    }
}
