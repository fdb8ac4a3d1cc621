//! `hookrelay healthcheck`, the container's HEALTHCHECK: the real binary exits 0 against a ready
//! node (by URL, or found through HOOKRELAY_LISTEN as in the image), 1 against a node that
//! answers 503 and against a port where nothing listens.

use std::process::Output;
use std::time::Duration;

use crate::support::*;

async fn healthcheck(args: &[&str], listen: Option<&str>) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"));
    cmd.arg("healthcheck")
        .args(args)
        .env_remove("HOOKRELAY_LISTEN")
        .env_remove("HOOKRELAY_CONFIG")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(listen) = listen {
        cmd.env("HOOKRELAY_LISTEN", listen);
    }
    tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("healthcheck returns within its timeout")
        .expect("run hookrelay healthcheck")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_0_when_ready_and_1_otherwise() {
    let server = TestServer::start(Backend::Sqlite).await;

    let ready = format!("{}/ready", server.base);
    let out = healthcheck(&["--url", &ready], None).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("200"),
        "{out:?}"
    );

    // As in the image: no --url, the port comes from HOOKRELAY_LISTEN=0.0.0.0:PORT.
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let out = healthcheck(&[], Some(&format!("0.0.0.0:{port}"))).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // A node that is up but not ready.
    let unready = serve_http(|_req| async {
        hyper::Response::builder()
            .status(503)
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                br#"{"status":"unavailable"}"#,
            )))
            .unwrap()
    })
    .await;
    let out = healthcheck(&["--url", &format!("http://{unready}/ready")], None).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("503"),
        "{out:?}"
    );

    // Nothing listening: a port that was just free.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let out = healthcheck(
        &["--url", &format!("http://{closed}/ready"), "--timeout", "2"],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}
