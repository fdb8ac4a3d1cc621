//! `hookrelay healthcheck`: GETs a node's `/ready` and exits 0 when it answers 2xx, 1 otherwise,
//! so a container's `HEALTHCHECK` needs no curl in the image.

use std::time::Duration;

/// The URL checked when none is given: `/ready` on loopback at the port of `listen`
/// (`HOOKRELAY_LISTEN`; a wildcard address such as `0.0.0.0` is reached on loopback), else
/// `http://127.0.0.1:8080/ready`.
pub fn default_url(listen: Option<&str>) -> String {
    let addr = listen
        .and_then(|l| l.trim().parse::<std::net::SocketAddr>().ok())
        .map(|a| {
            let ip = match a.ip() {
                ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
                ip if ip.is_unspecified() => "[::1]".to_owned(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            format!("{ip}:{}", a.port())
        })
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    format!("http://{addr}/ready")
}

/// `Ok(status line)` when `url` answers 2xx within `timeout`, else why not.
pub async fn check(url: &str, timeout: Duration) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let shown: String = body.trim().chars().take(200).collect();
    if status.is_success() {
        Ok(format!("GET {url}: {status} {shown}"))
    } else {
        Err(format!("GET {url}: {status} {shown}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_url_follows_the_listen_address() {
        assert_eq!(default_url(None), "http://127.0.0.1:8080/ready");
        assert_eq!(
            default_url(Some("0.0.0.0:9000")),
            "http://127.0.0.1:9000/ready"
        );
        assert_eq!(
            default_url(Some("127.0.0.2:8081")),
            "http://127.0.0.2:8081/ready"
        );
        assert_eq!(default_url(Some("[::]:8080")), "http://[::1]:8080/ready");
        assert_eq!(default_url(Some("[::1]:7000")), "http://[::1]:7000/ready");
        assert_eq!(
            default_url(Some("not an address")),
            "http://127.0.0.1:8080/ready"
        );
    }
}
