//! The inbound ingest scenario (`--ingest-only`): one GitHub source, realistic `pull_request`
//! payloads signed the way GitHub signs them, each with its own `X-GitHub-Delivery`, posted to
//! `POST /ingest/{source}` with bounded concurrency; reports accepted inbound requests/s.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hmac::{Hmac, Mac};
use rand::RngCore;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::api::{describe_error, error_code, expect_json, Api};
use crate::cli::Cli;
use crate::load::parse_retry_after;
use crate::report::{kib_to_mib, summarize_us, Percentiles};
use crate::server::{MemSampler, Node, Phase, PhaseCell, Stage};

/// The source the bench creates.
pub const SOURCE_NAME: &str = "bench-github";
/// Far above anything two cores can reach: the bench measures ingest, not the rate limiter.
const RATE_LIMIT_PER_MIN: u64 = 10_000_000;
const MAX_THROTTLED_RETRIES: u32 = 100;

/// The figures of one inbound run.
#[derive(Debug, Clone, Serialize)]
pub struct InboundReport {
    pub scenario: &'static str,
    pub command: String,
    pub server_bin: String,
    pub database_kind: &'static str,
    pub database: String,
    pub cpus: usize,
    pub inherited_env: Vec<String>,
    pub requests: u64,
    pub concurrency: u32,
    pub rate: f64,
    pub warmup_secs: f64,
    /// Size of each signed body (they differ by a few digits).
    pub payload_bytes: usize,
    pub server_startup_ms: f64,
    /// First request sent to last answer received.
    pub duration_s: f64,
    pub accepted: u64,
    pub accepted_per_s: f64,
    /// Requests sent after the warm-up, and how many of those were accepted per second.
    pub steady_duration_s: f64,
    pub steady_accepted: u64,
    pub steady_accepted_per_s: f64,
    /// Round trip of every answered request.
    pub latency: Option<Percentiles>,
    pub duplicates: u64,
    pub throttled_429: u64,
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
    pub error_samples: BTreeMap<String, String>,
    /// Events of the source counted through `GET /api/v1/events?source=` after the run.
    pub stored_events: u64,
    pub server_hwm_mib: Option<f64>,
    pub server_peak_rss_mib: Option<f64>,
    pub void: bool,
    pub void_reasons: Vec<String>,
}

/// Starts a server on a fresh store, runs the scenario, prints the report.
pub async fn run(cli: &Cli) -> Result<InboundReport> {
    let stage = Stage::prepare(cli)?;
    let Node {
        process: mut server,
        api,
        startup,
    } = stage.start("all", cli.concurrency as usize).await?;
    let phase = Arc::new(PhaseCell::default());
    let sampler = MemSampler::spawn(server.pid, phase.clone());

    let measured = drive(cli, &api, &server.base_url, &phase).await;

    let server_exit = server.exited();
    let server_hwm = server.stop();
    let peak_rss = sampler.finish();
    let mut report = match measured {
        Ok(r) => r,
        Err(err) => {
            return Err(err.context(format!(
                "the run failed; server log tail ({}):\n{}",
                server.log_path.display(),
                server.log_tail(2048)
            )))
        }
    };
    report.server_bin = stage.bin.display().to_string();
    report.database_kind = stage.db.kind.name();
    report.database = stage.db.description.clone();
    report.server_startup_ms = startup.as_secs_f64() * 1000.0;
    report.server_hwm_mib = server_hwm.map(kib_to_mib);
    report.server_peak_rss_mib = peak_rss
        .iter()
        .copied()
        .max()
        .filter(|k| *k > 0)
        .map(kib_to_mib);
    if let Some(status) = server_exit {
        report.void = true;
        report
            .void_reasons
            .push(format!("the server exited during the run ({status})"));
    }
    print!("{}", render_text(&report));
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("serializing the report")?
        );
    }
    stage.finish(cli.keep_workdir);
    Ok(report)
}

#[derive(Deserialize)]
struct Created {
    ingest_url: String,
}

/// Creates the GitHub source with a limit the run cannot reach; returns its secret and URL.
async fn setup(api: &Api) -> Result<(String, String)> {
    let mut raw = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut raw);
    let secret = to_hex(&raw);
    let body = serde_json::json!({
        "name": SOURCE_NAME, "provider": "github", "secret": secret,
        "rate_limit_per_min": RATE_LIMIT_PER_MIN,
    });
    let resp = api
        .post_json("/api/v1/sources", None, body.to_string())
        .send()
        .await
        .context("creating the GitHub source")?;
    let created: Created =
        expect_json(resp, StatusCode::CREATED, "creating the GitHub source").await?;
    Ok((secret, created.ingest_url))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, as GitHub sends it.
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", to_hex(&mac.finalize().into_bytes()))
}

/// Everything of a `pull_request` delivery but `action` and `number`, shaped like GitHub's
/// (same objects and fields, about 22 KB).
fn payload_rest() -> String {
    let user = |login: &str, id: u64| {
        let base = format!("https://api.github.com/users/{login}");
        serde_json::json!({
            "login": login, "id": id, "node_id": "MDQ6VXNlcjE4MzcxNDc=",
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
            "gravatar_id": "", "url": base, "html_url": format!("https://github.com/{login}"),
            "followers_url": format!("{base}/followers"),
            "following_url": format!("{base}/following{{/other_user}}"),
            "gists_url": format!("{base}/gists{{/gist_id}}"),
            "starred_url": format!("{base}/starred{{/owner}}{{/repo}}"),
            "subscriptions_url": format!("{base}/subscriptions"),
            "organizations_url": format!("{base}/orgs"), "repos_url": format!("{base}/repos"),
            "events_url": format!("{base}/events{{/privacy}}"),
            "received_events_url": format!("{base}/received_events"),
            "type": "User", "site_admin": false
        })
    };
    let repo = |owner: serde_json::Value| {
        let base = "https://api.github.com/repos/hookrelay/hookrelay";
        let mut r = serde_json::json!({
            "id": 723_456_789, "node_id": "R_kgDOKx3Y9Q", "name": "hookrelay",
            "full_name": "hookrelay/hookrelay", "private": false, "owner": owner,
            "html_url": "https://github.com/hookrelay/hookrelay",
            "description": "Durable, signed webhook delivery and verified inbound ingest.",
            "fork": false, "url": base, "created_at": "2026-01-04T09:12:44Z",
            "updated_at": "2026-11-23T08:01:02Z", "pushed_at": "2026-11-23T08:00:59Z",
            "git_url": "git://github.com/hookrelay/hookrelay.git",
            "ssh_url": "git@github.com:hookrelay/hookrelay.git",
            "clone_url": "https://github.com/hookrelay/hookrelay.git",
            "svn_url": "https://github.com/hookrelay/hookrelay", "homepage": null,
            "size": 1834, "stargazers_count": 412, "watchers_count": 412, "language": "Rust",
            "has_issues": true, "has_projects": false, "has_downloads": true, "has_wiki": false,
            "has_pages": false, "has_discussions": true, "forks_count": 37, "mirror_url": null,
            "archived": false, "disabled": false, "open_issues_count": 12,
            "license": {"key": "apache-2.0", "name": "Apache License 2.0", "spdx_id": "Apache-2.0",
                        "url": "https://api.github.com/licenses/apache-2.0", "node_id": "MDc6TGljZW5zZTI="},
            "allow_forking": true, "is_template": false, "web_commit_signoff_required": false,
            "topics": ["webhooks", "rust", "sqlite", "postgresql"], "visibility": "public",
            "forks": 37, "open_issues": 12, "watchers": 412, "default_branch": "main"
        });
        for name in [
            "forks",
            "keys",
            "collaborators",
            "teams",
            "hooks",
            "issue_events",
            "events",
            "assignees",
            "branches",
            "tags",
            "blobs",
            "git_tags",
            "git_refs",
            "trees",
            "statuses",
            "languages",
            "stargazers",
            "contributors",
            "subscribers",
            "subscription",
            "commits",
            "git_commits",
            "comments",
            "issue_comment",
            "contents",
            "compare",
            "merges",
            "archive",
            "downloads",
            "issues",
            "pulls",
            "milestones",
            "notifications",
            "labels",
            "releases",
            "deployments",
        ] {
            r[format!("{name}_url")] = serde_json::Value::String(format!("{base}/{name}"));
        }
        r
    };
    let author = user("ada-lovelace", 1_837_147);
    let org = user("hookrelay", 151_000_001);
    let pr_base = "https://api.github.com/repos/hookrelay/hookrelay/pulls/4";
    let branch = |label: &str, r#ref: &str, sha: &str| serde_json::json!({"label": label, "ref": r#ref, "sha": sha, "user": org, "repo": repo(org.clone())});
    let pull_request = serde_json::json!({
        "url": pr_base, "id": 2_045_118_992u64, "node_id": "PR_kwDOKx3Y9c55tqYQ",
        "html_url": "https://github.com/hookrelay/hookrelay/pull/4",
        "diff_url": "https://github.com/hookrelay/hookrelay/pull/4.diff",
        "patch_url": "https://github.com/hookrelay/hookrelay/pull/4.patch",
        "issue_url": "https://api.github.com/repos/hookrelay/hookrelay/issues/4",
        "state": "open", "locked": false, "title": "Inbound gateway: sources and verifiers",
        "user": author,
        "body": "Providers post to hookrelay; hookrelay proves who sent each request, refuses replays and duplicates, stores it, answers at once, and turns it into an event.\n\n- [x] GitHub\n- [x] Stripe\n- [x] PayPal\n- [x] Standard Webhooks\n- [x] Generic HMAC",
        "created_at": "2026-11-23T08:00:58Z", "updated_at": "2026-11-23T08:00:59Z",
        "closed_at": null, "merged_at": null, "merge_commit_sha": null,
        "assignee": null, "assignees": [], "requested_reviewers": [org], "requested_teams": [],
        "labels": [{"id": 6_012_345_678u64, "node_id": "LA_kwDOKx3Y9c8AAAABZl", "url": "https://api.github.com/repos/hookrelay/hookrelay/labels/feature", "name": "feature", "color": "a2eeef", "default": false, "description": "New feature"}],
        "milestone": null, "draft": false,
        "commits_url": format!("{pr_base}/commits"), "review_comments_url": format!("{pr_base}/comments"),
        "review_comment_url": "https://api.github.com/repos/hookrelay/hookrelay/pulls/comments{/number}",
        "comments_url": "https://api.github.com/repos/hookrelay/hookrelay/issues/4/comments",
        "statuses_url": "https://api.github.com/repos/hookrelay/hookrelay/statuses/6dcb09b5b57875f334f61aebed695e2e4193db5e",
        "head": branch("hookrelay:inbound", "inbound", "6dcb09b5b57875f334f61aebed695e2e4193db5e"),
        "base": branch("hookrelay:main", "main", "2c098c8e23fed16c107291fce26d0c01dc39c3c3"),
        "_links": {"self": {"href": pr_base}, "html": {"href": "https://github.com/hookrelay/hookrelay/pull/4"}},
        "author_association": "MEMBER", "auto_merge": null, "active_lock_reason": null,
        "merged": false, "mergeable": null, "rebaseable": null, "mergeable_state": "unknown",
        "merged_by": null, "comments": 0, "review_comments": 0, "maintainer_can_modify": false,
        "commits": 7, "additions": 2481, "deletions": 12, "changed_files": 24
    });
    let rest = serde_json::json!({
        "pull_request": pull_request, "repository": repo(org.clone()),
        "organization": {"login": "hookrelay", "id": 151_000_001, "url": "https://api.github.com/orgs/hookrelay"},
        "sender": author
    });
    let text = rest.to_string();
    // Drop the outer braces: the caller puts `action` and `number` in front.
    text[1..text.len() - 1].to_string()
}

/// One `pull_request` delivery body.
fn payload(rest: &str, seq: u64) -> String {
    let action = if seq % 4 == 0 {
        "opened"
    } else {
        "synchronize"
    };
    format!(r#"{{"action":"{action}","number":{seq},{rest}}}"#)
}

#[derive(Default)]
struct WorkerOut {
    /// (sent offset from the start in µs, round trip in µs, accepted)
    answers: Vec<(u64, u64, bool)>,
    duplicates: u64,
    throttled: u64,
    errors: BTreeMap<String, (u64, String)>,
}

impl WorkerOut {
    fn error(&mut self, kind: String, sample: String) {
        let entry = self.errors.entry(kind).or_insert((0, sample));
        entry.0 += 1;
    }
}

struct Ctx {
    client: reqwest::Client,
    url: String,
    secret: String,
    rest: String,
    nonce: u32,
    total: u64,
    rate: f64,
    next: AtomicU64,
    start: Instant,
}

async fn worker(ctx: Arc<Ctx>) -> WorkerOut {
    let mut out = WorkerOut::default();
    loop {
        let seq = ctx.next.fetch_add(1, Ordering::Relaxed);
        if seq >= ctx.total {
            return out;
        }
        if ctx.rate > 0.0 {
            // An absolute schedule: request `seq` goes no earlier than seq / rate after the start.
            let due = ctx.start + Duration::from_secs_f64(seq as f64 / ctx.rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let body = payload(&ctx.rest, seq);
        let signature = github_signature(&ctx.secret, body.as_bytes());
        let delivery = format!("{:08x}-b3c4-4d5e-8f60-{seq:012x}", ctx.nonce);
        let mut throttled = 0;
        loop {
            let sent = Instant::now();
            let resp = ctx
                .client
                .post(&ctx.url)
                .header("content-type", "application/json")
                .header("user-agent", "GitHub-Hookshot/bench")
                .header("x-github-event", "pull_request")
                .header("x-github-delivery", &delivery)
                .header("x-github-hook-id", "471234567")
                .header("x-hub-signature-256", &signature)
                .body(body.clone())
                .send()
                .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    out.error("transport".into(), format!("{e:#}"));
                    break;
                }
            };
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let bytes = resp.bytes().await.unwrap_or_default();
            let rtt = sent.elapsed().as_micros() as u64;
            let offset = sent.saturating_duration_since(ctx.start).as_micros() as u64;
            match status {
                StatusCode::ACCEPTED => out.answers.push((offset, rtt, true)),
                StatusCode::OK => {
                    out.answers.push((offset, rtt, false));
                    out.duplicates += 1;
                }
                StatusCode::TOO_MANY_REQUESTS if throttled < MAX_THROTTLED_RETRIES => {
                    out.throttled += 1;
                    throttled += 1;
                    tokio::time::sleep(retry_after.unwrap_or(Duration::from_secs(1))).await;
                    continue;
                }
                other => {
                    out.answers.push((offset, rtt, false));
                    let code = error_code(&bytes).unwrap_or_default();
                    out.error(
                        format!("HTTP {} {code}", other.as_u16())
                            .trim_end()
                            .to_string(),
                        describe_error(&bytes),
                    );
                }
            }
            break;
        }
    }
}

#[derive(Deserialize)]
struct EventPage {
    data: Vec<serde_json::Value>,
    next_cursor: Option<String>,
}

/// Counts the source's events through the API (the ledger: stored must equal accepted).
async fn stored_events(api: &Api) -> Result<u64> {
    let mut count = 0u64;
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/events?source={SOURCE_NAME}&limit=1000");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let resp = api
            .request(reqwest::Method::GET, &path, None)
            .send()
            .await
            .context("listing the source's events")?;
        let page: EventPage =
            expect_json(resp, StatusCode::OK, "listing the source's events").await?;
        count += page.data.len() as u64;
        match page.next_cursor {
            Some(c) if !page.data.is_empty() => cursor = Some(c),
            _ => return Ok(count),
        }
    }
}

async fn drive(
    cli: &Cli,
    api: &Api,
    base_url: &str,
    phase: &Arc<PhaseCell>,
) -> Result<InboundReport> {
    phase.set(Phase::Setup);
    let (secret, ingest_url) = setup(api).await?;
    // The server built the URL from our Host header; make sure it is the one we talk to.
    if !ingest_url.starts_with(base_url) {
        bail!("unexpected ingest_url {ingest_url} (server at {base_url})");
    }
    let rest = payload_rest();
    let payload_bytes = payload(&rest, 0).len();
    let ctx = Arc::new(Ctx {
        client: api.client.clone(),
        url: ingest_url,
        secret,
        rest,
        nonce: rand::random(),
        total: cli.events,
        rate: cli.rate,
        next: AtomicU64::new(0),
        start: Instant::now(),
    });
    phase.set(Phase::Warmup);
    let warmup = Duration::from_secs_f64(cli.warmup_secs);
    let phase_task = {
        let phase = phase.clone();
        tokio::spawn(async move {
            tokio::time::sleep(warmup).await;
            phase.advance(Phase::Warmup, Phase::Steady);
        })
    };
    let workers = (cli.concurrency as u64).min(cli.events).max(1);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        set.spawn(worker(ctx.clone()));
    }
    let mut answers = Vec::with_capacity(cli.events as usize);
    let (mut duplicates, mut throttled) = (0, 0);
    let mut errors: BTreeMap<String, (u64, String)> = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        let out = joined.context("an ingest worker panicked")?;
        answers.extend(out.answers);
        duplicates += out.duplicates;
        throttled += out.throttled;
        for (kind, (n, sample)) in out.errors {
            let e = errors.entry(kind).or_insert((0, sample));
            e.0 += n;
        }
    }
    let end = ctx.start.elapsed();
    phase_task.abort();
    phase.set(Phase::Ledger);
    let stored = stored_events(api).await?;

    let accepted = answers.iter().filter(|a| a.2).count() as u64;
    let warmup_us = warmup.as_micros() as u64;
    let steady_accepted = answers.iter().filter(|a| a.2 && a.0 >= warmup_us).count() as u64;
    let steady_s = end.saturating_sub(warmup).as_secs_f64();
    let per_s = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
    let mut rtts: Vec<u64> = answers.iter().map(|a| a.1).collect();
    let error_count: u64 = errors.values().map(|(n, _)| n).sum();
    let mut void_reasons = Vec::new();
    if accepted == 0 {
        void_reasons.push("no request was accepted".to_string());
    }
    if stored != accepted {
        void_reasons.push(format!(
            "{stored} events stored for {accepted} accepted requests"
        ));
    }
    if duplicates > 0 {
        void_reasons.push(format!(
            "{duplicates} unique deliveries were answered as duplicates"
        ));
    }
    Ok(InboundReport {
        scenario: crate::cli::Scenario::Inbound.name(),
        command: crate::cli::command_line(),
        server_bin: String::new(),
        database_kind: "",
        database: String::new(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        inherited_env: crate::inherited_env(),
        requests: cli.events,
        concurrency: cli.concurrency,
        rate: cli.rate,
        warmup_secs: cli.warmup_secs,
        payload_bytes,
        server_startup_ms: 0.0,
        duration_s: end.as_secs_f64(),
        accepted,
        accepted_per_s: per_s(accepted, end.as_secs_f64()),
        steady_duration_s: steady_s,
        steady_accepted,
        steady_accepted_per_s: per_s(steady_accepted, steady_s),
        latency: summarize_us(&mut rtts),
        duplicates,
        throttled_429: throttled,
        errors: error_count,
        error_samples: errors
            .iter()
            .map(|(k, (_, s))| (k.clone(), s.clone()))
            .collect(),
        error_kinds: errors.into_iter().map(|(k, (n, _))| (k, n)).collect(),
        stored_events: stored,
        server_hwm_mib: None,
        server_peak_rss_mib: None,
        void: !void_reasons.is_empty(),
        void_reasons,
    })
}

pub fn render_text(r: &InboundReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## hookrelay-bench: {} ({})",
        r.scenario, r.database_kind
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "command:  {}", r.command);
    let _ = writeln!(
        s,
        "server:   {} (ready in {:.0} ms)",
        r.server_bin, r.server_startup_ms
    );
    let _ = writeln!(s, "database: {}", r.database);
    let _ = writeln!(s, "host:     {} CPUs", r.cpus);
    if !r.inherited_env.is_empty() {
        let _ = writeln!(s, "env:      {}", r.inherited_env.join(" "));
    }
    let rate = if r.rate > 0.0 {
        format!("{} req/s", r.rate)
    } else {
        "max".to_string()
    };
    let _ = writeln!(
        s,
        "load:     GitHub source, signed pull_request deliveries of {} bytes, unique X-GitHub-Delivery; requests={} rate={rate} concurrency={}",
        r.payload_bytes, r.requests, r.concurrency
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "ingest:     {} accepted (202) in {:.3} s = {:.1} accepted requests/s",
        r.accepted, r.duration_s, r.accepted_per_s
    );
    let _ = writeln!(
        s,
        "steady:     {} accepted in {:.3} s after a {:.1} s warm-up = {:.1} accepted requests/s",
        r.steady_accepted, r.steady_duration_s, r.warmup_secs, r.steady_accepted_per_s
    );
    if let Some(p) = &r.latency {
        let _ = writeln!(
            s,
            "latency:    round trip p50={:.1} p95={:.1} p99={:.1} max={:.1} ms",
            p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms
        );
    }
    let _ = writeln!(
        s,
        "answers:    duplicates={} 429s={} errors={}",
        r.duplicates, r.throttled_429, r.errors
    );
    for (kind, n) in &r.error_kinds {
        let sample = r.error_samples.get(kind).map_or("", String::as_str);
        let _ = writeln!(s, "  error {kind}: {n} (e.g. {sample})");
    }
    let mib = |v: Option<f64>| v.map_or("?".to_string(), |v| format!("{v:.1} MiB"));
    let _ = writeln!(
        s,
        "memory:     server VmHWM={}; server peak RSS={}",
        mib(r.server_hwm_mib),
        mib(r.server_peak_rss_mib)
    );
    let _ = writeln!(
        s,
        "ledger:     stored events={} accepted={}",
        r.stored_events, r.accepted
    );
    if r.void {
        let _ = writeln!(s, "RUN VOID: {}", r.void_reasons.join("; "));
    } else {
        let _ = writeln!(s, "run valid");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_realistic_json() {
        let rest = payload_rest();
        let body = payload(&rest, 8);
        let v: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
        assert_eq!(v["action"], "opened");
        assert_eq!(v["number"], 8);
        assert_eq!(v["pull_request"]["head"]["ref"], "inbound");
        assert_eq!(v["repository"]["full_name"], "hookrelay/hookrelay");
        assert!(body.len() > 8 * 1024, "{} bytes", body.len());
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&payload(&rest, 9)).unwrap()["action"],
            "synchronize"
        );
    }

    #[test]
    fn signs_like_github() {
        // GitHub's published example.
        assert_eq!(
            github_signature("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
