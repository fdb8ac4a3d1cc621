//! PayPal's signing certificates: fetched over HTTPS only from allowlisted hosts, parsed once and
//! cached by URL. The one part of `inbound` that does I/O, behind the `CertSource` trait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Url;
use rsa::pkcs8::DecodePublicKey;
use rsa::RsaPublicKey;
use x509_cert::der::{DecodePem, Encode};
use x509_cert::Certificate;

use super::{CertSource, Rejection};

/// PayPal's API hosts, the default allowlist.
pub const DEFAULT_HOSTS: &str =
    "api.paypal.com,api.sandbox.paypal.com,api-m.paypal.com,api-m.sandbox.paypal.com";

/// A certificate larger than this is not PayPal's.
const MAX_CERT_BYTES: usize = 64 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Distinct certificate URLs kept; PayPal uses a handful at a time.
const MAX_CACHED: usize = 64;

/// One allowlist entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedHost {
    pub host: String,
    /// `None`: the scheme's default port only.
    pub port: Option<u16>,
    /// Plain HTTP allowed (only when written `http://…`).
    pub http: bool,
}

/// Parses the comma-separated allowlist (`HOOKRELAY_PAYPAL_CERT_HOSTS`): `host` or `host:port`
/// entries allow https only; an entry written `http://host:port` also allows plain HTTP to
/// exactly that host and port (local tests; the config refuses it in `prod`).
pub fn parse_allowlist(raw: &str) -> Result<Vec<AllowedHost>, String> {
    let mut hosts = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (http, rest) = match entry.strip_prefix("http://") {
            Some(rest) => (true, rest),
            None => (false, entry.strip_prefix("https://").unwrap_or(entry)),
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h,
                Some(
                    p.parse::<u16>()
                        .map_err(|_| format!("`{entry}`: the port is not a number"))?,
                ),
            ),
            None => (rest, None),
        };
        let valid_host = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !valid_host {
            return Err(format!("`{entry}` is not a host or host:port"));
        }
        hosts.push(AllowedHost {
            host: host.to_ascii_lowercase(),
            port,
            http,
        });
    }
    Ok(hosts)
}

/// Whether `raw` may be fetched: https (or http for an `http://` entry), an allowlisted host and
/// port, no credentials.
pub fn check_url(raw: &str, allowed: &[AllowedHost]) -> Result<Url, String> {
    if raw.len() > 500 {
        return Err("PAYPAL-CERT-URL is too long".into());
    }
    let url = Url::parse(raw).map_err(|_| "PAYPAL-CERT-URL is not a URL".to_owned())?;
    let https = match url.scheme() {
        "https" => true,
        "http" => false,
        _ => return Err("PAYPAL-CERT-URL must be https".into()),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err("PAYPAL-CERT-URL must not carry credentials".into());
    }
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let ok = allowed.iter().any(|a| {
        a.host == host
            && (https || a.http)
            && match a.port {
                Some(p) => url.port_or_known_default() == Some(p),
                None => url.port().is_none(),
            }
    });
    if ok {
        Ok(url)
    } else {
        Err(format!(
            "PAYPAL-CERT-URL host `{host}` is not an allowed PayPal host"
        ))
    }
}

/// The RSA key of the first certificate in a PEM document, with its validity window (Unix
/// seconds).
pub fn parse_certificate(pem: &[u8]) -> Result<(RsaPublicKey, i64, i64), String> {
    let text = std::str::from_utf8(pem).map_err(|_| "the certificate is not PEM text")?;
    // PayPal may send the chain; the signing certificate comes first.
    let first = text
        .find("-----END CERTIFICATE-----")
        .map(|end| &text[..end + "-----END CERTIFICATE-----".len()])
        .ok_or("no PEM certificate found")?;
    let cert = Certificate::from_pem(first.trim_start().as_bytes())
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let tbs = &cert.tbs_certificate;
    let spki = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|e| format!("unreadable public key: {e}"))?;
    let key = RsaPublicKey::from_public_key_der(&spki)
        .map_err(|_| "the certificate's key is not RSA".to_owned())?;
    let secs = |t: x509_cert::time::Time| t.to_unix_duration().as_secs() as i64;
    Ok((
        key,
        secs(tbs.validity.not_before),
        secs(tbs.validity.not_after),
    ))
}

struct Cached {
    key: Arc<RsaPublicKey>,
    not_before: i64,
    not_after: i64,
}

/// Fetches certificates from allowlisted hosts and keeps them by URL.
pub struct PayPalCerts {
    allowed: Vec<AllowedHost>,
    client: reqwest::Client,
    cache: Mutex<HashMap<String, Arc<Cached>>>,
}

impl PayPalCerts {
    pub fn new(allowed: Vec<AllowedHost>) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .user_agent(concat!("hookrelay/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            allowed,
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    async fn fetch(&self, url: Url) -> Result<Cached, Rejection> {
        let unavailable =
            |e: String| Rejection::Unavailable(format!("fetching the PayPal certificate: {e}"));
        let mut resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!("answered {}", resp.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| unavailable(e.to_string()))? {
            if body.len() + chunk.len() > MAX_CERT_BYTES {
                return Err(Rejection::Signature(
                    "the PAYPAL-CERT-URL document is too large to be a certificate".into(),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let (key, not_before, not_after) = parse_certificate(&body)
            .map_err(|e| Rejection::Signature(format!("PAYPAL-CERT-URL: {e}")))?;
        Ok(Cached {
            key: Arc::new(key),
            not_before,
            not_after,
        })
    }
}

#[async_trait]
impl CertSource for PayPalCerts {
    async fn rsa_key(&self, raw: &str, now_secs: i64) -> Result<Arc<RsaPublicKey>, Rejection> {
        let url = check_url(raw, &self.allowed).map_err(Rejection::Signature)?;
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(raw)
            .cloned();
        let cert = match cached {
            Some(c) => c,
            None => {
                let fetched = Arc::new(self.fetch(url).await?);
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
                cache.insert(raw.to_owned(), fetched.clone());
                fetched
            }
        };
        if now_secs < cert.not_before || now_secs > cert.not_after {
            return Err(Rejection::Signature(
                "the PayPal certificate is expired or not yet valid".into(),
            ));
        }
        Ok(cert.key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(raw: &str) -> Vec<AllowedHost> {
        parse_allowlist(raw).unwrap()
    }

    #[test]
    fn default_hosts_allow_only_paypal_over_https() {
        let hosts = allow(DEFAULT_HOSTS);
        assert_eq!(hosts.len(), 4);
        let ok = "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77";
        assert!(check_url(ok, &hosts).is_ok());
        assert!(check_url(
            "https://api.sandbox.paypal.com/v1/notifications/certs/X",
            &hosts
        )
        .is_ok());
        for bad in [
            "http://api.paypal.com/v1/notifications/certs/X",
            "https://api.paypal.com:8443/cert",
            "https://api.paypal.com.evil.example/cert",
            "https://evil.example/api.paypal.com",
            "https://user@api.paypal.com/cert",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(check_url(bad, &hosts).is_err(), "{bad}");
        }
    }

    #[test]
    fn http_only_for_entries_written_with_it() {
        let hosts = allow("api.paypal.com, http://127.0.0.1:8123 ,localhost:9000");
        assert!(check_url("http://127.0.0.1:8123/cert", &hosts).is_ok());
        assert!(check_url("https://127.0.0.1:8123/cert", &hosts).is_ok());
        assert!(check_url("http://127.0.0.1:8124/cert", &hosts).is_err());
        assert!(check_url("https://localhost:9000/cert", &hosts).is_ok());
        assert!(check_url("http://localhost:9000/cert", &hosts).is_err());
        assert!(parse_allowlist("api.paypal.com:https").is_err());
        assert!(parse_allowlist("bad host").is_err());
        assert_eq!(parse_allowlist(" , ").unwrap(), vec![]);
    }

    #[test]
    fn parses_a_generated_certificate() {
        let key = crate::inbound::paypal::tests::test_key();
        let pem = test_certificate_pem(key);
        // A chain: the first certificate is the one that signs.
        let chain = format!("{pem}\n{pem}");
        let (public, not_before, not_after) = parse_certificate(chain.as_bytes()).unwrap();
        assert_eq!(public, key.to_public_key());
        assert!(not_before < not_after);
        assert!(parse_certificate(b"junk").is_err());
    }

    /// A self-signed certificate for `key`, as PayPal's would look to us.
    pub(crate) fn test_certificate_pem(key: &rsa::RsaPrivateKey) -> String {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let pair =
            rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256).unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["messageverificationcerts.paypal.com".into()])
                .unwrap();
        params.self_signed(&pair).unwrap().pem()
    }
}
