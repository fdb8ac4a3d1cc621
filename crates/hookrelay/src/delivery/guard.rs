//! SSRF defence at connect time: every address a webhook host resolves to is checked against
//! the target policy, and the client connects only to addresses that passed (so DNS rebinding
//! between a check and the connection is impossible). IP literals are checked before sending.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use hookrelay_domain::netpolicy::TargetPolicy;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Looks a host name up; the system resolver in production, a fixed table in tests.
pub trait HostLookup: Send + Sync + 'static {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;
}

/// The operating system's resolver (getaddrinfo through tokio).
pub struct SystemLookup;

impl HostLookup for SystemLookup {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// Refusal of a target, recognised by the sender as `ErrorKind::BlockedAddress`.
#[derive(Debug, thiserror::Error)]
#[error("blocked address: {0}")]
pub struct BlockedAddress(pub String);

/// A reqwest resolver that drops every address the policy forbids.
pub struct GuardedResolver {
    pub policy: Arc<TargetPolicy>,
    pub lookup: Arc<dyn HostLookup>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (policy, lookup) = (self.policy.clone(), self.lookup.clone());
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if hookrelay_domain::netpolicy::is_local_hostname(&host)
                && !policy.allows(IpAddr::from([127, 0, 0, 1]))
            {
                return Err(Box::new(BlockedAddress(format!("{host} is this machine"))) as _);
            }
            let found = lookup.lookup(host.clone()).await?;
            let allowed: Vec<SocketAddr> = found
                .iter()
                .filter(|ip| policy.allows(**ip))
                .map(|ip| SocketAddr::new(*ip, 0))
                .collect();
            if allowed.is_empty() {
                let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
                return Err(Box::new(BlockedAddress(format!(
                    "{host} resolves only to non-public addresses ({})",
                    shown.join(", ")
                ))) as _);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Checks a URL whose host is an IP literal (reqwest does not resolve those). `http://2130706433/`
/// and `http://0x7f.1/` arrive here already normalised to 127.0.0.1 by the URL parser.
pub fn check_literal(policy: &TargetPolicy, url: &url::Url) -> Result<(), BlockedAddress> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err(BlockedAddress("the URL has no host".into())),
    };
    if policy.allows(ip) {
        Ok(())
    } else {
        Err(BlockedAddress(format!("{ip} is not a public address")))
    }
}
