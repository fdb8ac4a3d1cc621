//! `hookrelay listen` end to end: the real binary as the server and as listeners, a local
//! receiver on 127.0.0.1. Deliveries of a `relay` webhook reach the receiver through the
//! listener's one connection with their signature, the local answer is the attempt, nothing is
//! lost while no listener is connected, and connected listeners share the load.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hookrelay::auth::keys::generate_api_key;
use serde_json::{json, Value};

use crate::support::process::ServerProcess;
use crate::support::*;

const WAIT: Duration = Duration::from_secs(30);

/// One `hookrelay listen` child process, its stdout and stderr each in a file.
struct Listener {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Listener {
    fn start(dir: &Path, name: &str, server: &str, key: &str, forward_to: &str) -> Self {
        Self::start_with(
            dir,
            name,
            server,
            key,
            forward_to,
            &["--events", "github.*"],
        )
    }

    fn start_with(
        dir: &Path,
        name: &str,
        server: &str,
        key: &str,
        forward_to: &str,
        extra: &[&str],
    ) -> Self {
        let out = dir.join(format!("{name}.out"));
        let err = dir.join(format!("{name}.err"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookrelay"));
        cmd.args(["listen", "--server", server, "--forward-to", forward_to])
            .args(extra)
            .env("HOOKRELAY_KEY", key)
            .stdin(Stdio::null())
            .stdout(File::create(&out).expect("stdout file"))
            .stderr(File::create(&err).expect("stderr file"));
        Self {
            child: cmd.spawn().expect("spawn hookrelay listen"),
            out,
            err,
        }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    async fn wait_connected(&self) {
        eventually(WAIT, "the listener to connect", || async {
            self.stderr()
                .contains("connected as a listener")
                .then_some(())
        })
        .await;
    }

    /// The printed lines about deliveries.
    fn lines(&self) -> Vec<String> {
        self.stdout().lines().map(str::to_owned).collect()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- listener stdout ----\n{}\n---- stderr ----\n{}",
                self.stdout(),
                self.stderr()
            );
        }
    }
}

async fn emit(server: &ServerProcess, body: Value) -> String {
    let (status, ev) = server.post("/api/v1/events", body).await;
    assert_eq!(status, 202, "{ev}");
    let (_, e) = server
        .get(&format!("/api/v1/events/{}", ev["id"].as_str().unwrap()))
        .await;
    e["deliveries"][0]["id"]
        .as_str()
        .expect("one delivery")
        .to_owned()
}

async fn delivery(server: &ServerProcess, id: &str, status: &str) -> Value {
    eventually(WAIT, &format!("delivery {id} to be {status}"), || async {
        let (_, d) = server.get(&format!("/api/v1/deliveries/{id}")).await;
        (d["status"] == status).then_some(d)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_forwards_signed_deliveries_and_records_the_local_answer() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/hookrelay.db", dir.path().display());
    let server = ServerProcess::start(
        "relay-server",
        "all",
        &db,
        &generate_api_key(),
        dir.path(),
        // A listener that vanishes is noticed within the attempt timeout.
        &[("HOOKRELAY_DELIVERY_TIMEOUT_MS", "3000")],
    )
    .await;
    let (status, key) = server
        .post("/api/v1/keys", json!({"name": "laptop", "role": "editor"}))
        .await;
    assert_eq!(status, 201, "{key}");
    let key = key["key"].as_str().unwrap().to_owned();
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(200).body("local ok"));
    let local = rx.url("/hooks");

    // The first listener creates the relay webhook and prints its secret once.
    let first = Listener::start(dir.path(), "first", &server.base, &key, &local);
    first.wait_connected().await;
    let secret = first
        .stderr()
        .split_whitespace()
        .find(|w| w.starts_with("whsec_"))
        .expect("the signing secret is printed at creation")
        .to_owned();
    let (_, hooks) = server.get("/api/v1/webhooks").await;
    let hook = &hooks["data"][0];
    assert_eq!(hook["kind"], "relay");
    assert_eq!(hook["url"], local.as_str());
    assert_eq!(hook["events"], json!(["github.*"]));

    let d1 = emit(
        &server,
        json!({"type": "github.push", "data": {"ref": "main"}}),
    )
    .await;
    let got = eventually(WAIT, "the forwarded delivery", || async {
        rx.requests().into_iter().next()
    })
    .await;
    assert_eq!(got.path, "/hooks");
    assert_eq!(got.json()["data"], json!({"ref": "main"}));
    assert_eq!(got.header("webhook-id"), d1);
    assert_eq!(got.header("x-webhook-event"), "github.push");
    assert!(verify_standard_signature(
        &secret,
        &got.header("webhook-id"),
        &got.header("webhook-timestamp"),
        &got.body,
        &got.header("webhook-signature"),
    ));
    let done = delivery(&server, &d1, "succeeded").await;
    let attempt = &done["attempts"][0];
    assert_eq!(attempt["response_status"], 200, "{done}");
    assert_eq!(attempt["response_body"], "local ok");
    assert_eq!(
        attempt["request_headers"]["webhook-signature"],
        "[redacted]"
    );
    eventually(WAIT, "a printed line", || async {
        first
            .lines()
            .iter()
            .any(|l| l.contains("github.push") && l.contains(&d1) && l.contains(" 200 "))
            .then_some(())
    })
    .await;

    // The local answer is the attempt: a 500 there is a failed attempt here, retried.
    rx.script([Reply::status(500).body("local boom")]);
    let d2 = emit(&server, json!({"type": "github.issues.opened", "data": {}})).await;
    let failed = eventually(WAIT, "the local 500 recorded", || async {
        let (_, d) = server.get(&format!("/api/v1/deliveries/{d2}")).await;
        (d["attempts"].as_array().is_some_and(|a| !a.is_empty())).then_some(d)
    })
    .await;
    assert_eq!(failed["attempts"][0]["response_status"], 500, "{failed}");
    assert_eq!(failed["attempts"][0]["response_body"], "local boom");
    assert_eq!(failed["status"], "pending");

    // No listener: the delivery waits and retries like a down endpoint...
    drop(first);
    let d3 = emit(
        &server,
        json!({"type": "github.pr.opened", "data": {"n": 3}}),
    )
    .await;
    let waiting = eventually(WAIT, "a failed attempt without a listener", || async {
        let (_, d) = server.get(&format!("/api/v1/deliveries/{d3}")).await;
        (d["attempts"].as_array().is_some_and(|a| !a.is_empty())).then_some(d)
    })
    .await;
    assert_eq!(waiting["status"], "pending", "{waiting}");
    let error = waiting["attempts"][0]["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("no `hookrelay listen` is connected") || error.contains("listener"),
        "{error}"
    );
    // ...and is delivered once listeners connect (these two reuse the webhook).
    let a = Listener::start(dir.path(), "a", &server.base, &key, &local);
    let b = Listener::start(dir.path(), "b", &server.base, &key, &local);
    a.wait_connected().await;
    b.wait_connected().await;
    assert!(
        a.stderr().contains("reusing relay webhook"),
        "{}",
        a.stderr()
    );
    let late = delivery(&server, &d3, "succeeded").await;
    let attempts = late["attempts"].as_array().unwrap();
    assert_eq!(attempts.last().unwrap()["response_status"], 200, "{late}");
    assert!(attempts.len() >= 2);
    let (_, hooks) = server.get("/api/v1/webhooks").await;
    assert_eq!(
        hooks["data"].as_array().unwrap().len(),
        1,
        "reused, not duplicated"
    );

    // Connected listeners take turns.
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(emit(&server, json!({"type": "github.push", "data": {"i": i}})).await);
    }
    for id in &ids {
        delivery(&server, id, "succeeded").await;
    }
    let count = |l: &Listener| {
        ids.iter()
            .filter(|id| l.lines().iter().any(|line| line.contains(id.as_str())))
            .count()
    };
    eventually(WAIT, "both listeners to print their lines", || async {
        (count(&a) + count(&b) == ids.len()).then_some(())
    })
    .await;
    assert!(
        count(&a) > 0 && count(&b) > 0,
        "a: {:?}\nb: {:?}",
        a.lines(),
        b.lines()
    );

    // The `/test` action goes through a listener too, and answers with the local status.
    let hook_id = hook["id"].as_str().unwrap();
    let (status, tested) = server
        .post(&format!("/api/v1/webhooks/{hook_id}/test"), json!({}))
        .await;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(
        (
            tested["status"].as_str(),
            tested["response_status"].as_u64()
        ),
        (Some("succeeded"), Some(200)),
        "{tested}"
    );

    // A transform and an ed25519 key apply to relay deliveries as to http ones: the listener
    // forwards the reshaped body with its v1a signature, which Node verifies.
    let (status, patched) = server
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/webhooks/{hook_id}"),
            Some(json!({"signature_scheme": "ed25519", "transform": "{\"ref\": {{ data.ref | tojson }}}"})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    let seen = rx.count();
    emit(
        &server,
        json!({"type": "github.push", "data": {"ref": "dev"}}),
    )
    .await;
    let got = eventually(WAIT, "the transformed delivery", || async {
        rx.requests().into_iter().nth(seen)
    })
    .await;
    assert_eq!(got.json(), json!({"ref": "dev"}));
    let verdict = node_verify_ed25519(
        &[patched["public_key"].as_str().unwrap()],
        &got.header("webhook-id"),
        &got.header("webhook-timestamp"),
        &got.body,
        &got.header("webhook-signature"),
    );
    assert_eq!(verdict, [true]);

    // A local receiver slower than the server's attempt timeout (3 s here): the attempt times
    // out like an http one, and the late answer is refused.
    rx.script([Reply::status(200).delay(Duration::from_secs(5))]);
    let slow = emit(
        &server,
        json!({"type": "github.release.published", "data": {}}),
    )
    .await;
    let timed_out = eventually(WAIT, "the attempt to time out", || async {
        let (_, d) = server.get(&format!("/api/v1/deliveries/{slow}")).await;
        (d["attempts"].as_array().is_some_and(|a| !a.is_empty())).then_some(d)
    })
    .await;
    assert_eq!(
        timed_out["attempts"][0]["error_kind"], "timeout",
        "{timed_out}"
    );
    assert_eq!(timed_out["status"], "pending");
    eventually(
        WAIT,
        "the listener to say its answer came too late",
        || async {
            (a.stderr() + &b.stderr())
                .contains("came too late")
                .then_some(())
        },
    )
    .await;

    // `--webhook` picks a relay webhook of one's own, whatever the URL.
    let (status, mine) = server
        .post(
            "/api/v1/webhooks",
            json!({"kind": "relay", "url": local, "events": ["member.*"]}),
        )
        .await;
    assert_eq!(status, 201, "{mine}");
    let mine_id = mine["id"].as_str().unwrap();
    let own = Listener::start_with(
        dir.path(),
        "own",
        &server.base,
        &key,
        &rx.url("/own"),
        &["--webhook", mine_id],
    );
    own.wait_connected().await;
    let member = emit(&server, json!({"type": "member.created", "data": {}})).await;
    delivery(&server, &member, "succeeded").await;
    assert!(rx
        .requests()
        .iter()
        .any(|r| r.path == "/own" && r.header("webhook-id") == member));
    let plain = server
        .webhook(json!({"url": rx.url("/plain"), "events": ["nothing.*"]}))
        .await;
    let mut wrong = Listener::start_with(
        dir.path(),
        "wrong",
        &server.base,
        &key,
        &local,
        &["--webhook", plain["id"].as_str().unwrap()],
    );
    let deadline = std::time::Instant::now() + WAIT;
    let exit = loop {
        if let Some(status) = wrong.child.try_wait().expect("poll the listener") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a listener of a non-relay webhook must stop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!exit.success());
    assert!(wrong.stderr().contains("not relay"), "{}", wrong.stderr());

    // The routes refuse what is not theirs.
    let (status, err) = server
        .get(&format!(
            "/api/v1/relay/{}/connect",
            plain["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 409, "{err}");
    let (status, err) = server
        .post(
            &format!("/api/v1/relay/{hook_id}/results"),
            json!({"token": "rly_unknown", "status": 200}),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{err}"
    );
    let (status, err) = server
        .post(
            &format!("/api/v1/relay/{hook_id}/results"),
            json!({"token": "x", "surprise": 1}),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    let (_, viewer) = server
        .post("/api/v1/keys", json!({"name": "v", "role": "viewer"}))
        .await;
    let status = server
        .client
        .get(format!("{}/api/v1/relay/{hook_id}/connect", server.base))
        .bearer_auth(viewer["key"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 403, "a viewer may not take deliveries");
}
