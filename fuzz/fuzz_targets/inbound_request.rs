//! Fuzzes the inbound gateway: a source's provider settings (`ProviderConfig::parse`), then that
//! provider's verifier and payload decoding on fuzzer-chosen headers and body, with fixed secrets.
#![no_main]

use std::sync::{Arc, OnceLock};

use arbitrary::Arbitrary;
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hookrelay::inbound::hmac::{compute, Encoding, HmacConfig};
use hookrelay::inbound::{
    github, paypal, process, stripe, CertSource, Env, Inbound, Payload, Provider, ProviderConfig,
    Rejection, TOLERANCE_SECS,
};
use hookrelay_domain::time::to_rfc3339;
use hookrelay_domain::validate::is_valid_event_type;
use hookrelay_domain::WebhookSecret;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Map, Value};
use sha2::Sha256;

// Fixed so that a crash file reproduces; `SECRET` suits every HMAC provider, Standard Webhooks
// needs its `whsec_` form (the specification's test secret).
const SECRET: &str = "fuzz-secret";
const STANDARD_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const CERT_URL: &str = "https://api.paypal.com/v1/notifications/certs/CERT-fuzz";
const NOW: i64 = 1_700_000_000;

/// Headers every provider reads, so the fuzzer need not guess their names.
const KNOWN_HEADERS: [&str; 18] = [
    "content-type",
    "x-hub-signature-256",
    "x-github-event",
    "x-github-delivery",
    "stripe-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "paypal-transmission-id",
    "paypal-transmission-time",
    "paypal-transmission-sig",
    "paypal-cert-url",
    "paypal-auth-algo",
    "x-signature",
    "x-timestamp",
    "x-event-type",
    "x-delivery-id",
    "x-hook-id",
];

#[derive(Arbitrary, Debug)]
enum Name<'a> {
    Known(u8),
    Other(&'a str),
}

/// A signing time: near our clock (so tolerance can pass), at an edge of the tolerance window
/// or of `i64`, or anything at all. Random bytes almost never land on the edges by themselves.
#[derive(Arbitrary, Debug)]
enum Stamp {
    Near(i16),
    Edge(u8),
    Any(i64),
}

const EDGES: [i64; 9] = [
    i64::MIN,
    i64::MIN + 1,
    -1,
    0,
    i64::MAX,
    NOW - TOLERANCE_SECS - 1,
    NOW - TOLERANCE_SECS,
    NOW + TOLERANCE_SECS,
    NOW + TOLERANCE_SECS + 1,
];

/// The `config` object of a source, field by field; absent fields are left out of the JSON.
#[derive(Arbitrary, Debug)]
struct Settings<'a> {
    header: Option<&'a str>,
    algorithm: Option<&'a str>,
    encoding: Option<&'a str>,
    prefix: Option<&'a str>,
    timestamp_header: Option<&'a str>,
    signed_payload: Option<&'a str>,
    type_path: Option<&'a str>,
    type_header: Option<&'a str>,
    id_path: Option<&'a str>,
    id_header: Option<&'a str>,
    webhook_id: Option<&'a str>,
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    provider: u8,
    settings: Settings<'a>,
    headers: Vec<(Name<'a>, &'a [u8])>,
    body: &'a [u8],
    /// Whether to add a correct signature, so the fuzzer also reaches what follows verification.
    sign: bool,
    stamp: Stamp,
    /// The provider's delivery id (`webhook-id`, `PAYPAL-TRANSMISSION-ID`) when signing.
    delivery_id: &'a str,
    /// PayPal's transmission time text when signing; `None` renders the stamp as RFC 3339.
    paypal_time: Option<&'a str>,
    path: &'a str,
}

/// PayPal's certificate for every URL: a fixed small key, so signed requests can pass.
struct FixedCert;

#[async_trait]
impl CertSource for FixedCert {
    async fn rsa_key(&self, _url: &str, _now: i64) -> Result<Arc<RsaPublicKey>, Rejection> {
        Ok(Arc::new(paypal_key().to_public_key()))
    }
}

fn paypal_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    // 1024 bits from a seeded generator: fast to make and to sign with, the same on every run.
    KEY.get_or_init(
        || match RsaPrivateKey::new(&mut StdRng::seed_from_u64(0x600d), 1024) {
            Ok(key) => key,
            Err(e) => panic!("RSA key generation: {e}"),
        },
    )
}

fn settings_json(s: &Settings<'_>) -> Value {
    let fields = [
        ("header", s.header),
        ("algorithm", s.algorithm),
        ("encoding", s.encoding),
        ("prefix", s.prefix),
        ("timestamp_header", s.timestamp_header),
        ("signed_payload", s.signed_payload),
        ("type_path", s.type_path),
        ("type_header", s.type_header),
        ("id_path", s.id_path),
        ("id_header", s.id_header),
        ("webhook_id", s.webhook_id),
    ];
    let map: Map<String, Value> = fields
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), Value::String(v.to_owned()))))
        .collect();
    Value::Object(map)
}

/// A valid configuration of the provider, for when the fuzzed one is refused: the verifier
/// must still be driven.
fn fallback(provider: Provider) -> Value {
    match provider {
        Provider::PayPal => json!({"webhook_id": "WH1FUZZ"}),
        Provider::Hmac => json!({"header": "x-signature", "timestamp_header": "x-timestamp"}),
        _ => json!({}),
    }
}

fn put(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        headers.insert(n, v);
    }
}

/// The text a generic HMAC source signs before the body (mirrors `HmacConfig::signed_prefix`).
fn hmac_prefix(c: &HmacConfig, timestamp: Option<&str>) -> String {
    let template = match (&c.signed_payload, timestamp) {
        (Some(t), _) => t.as_str(),
        (None, Some(_)) => "{timestamp}.{body}",
        (None, None) => "{body}",
    };
    let before = template.strip_suffix("{body}").unwrap_or_default();
    before.replace("{timestamp}", timestamp.unwrap_or_default())
}

/// Adds the headers a genuine sender would, overriding the fuzzed ones of the same name.
fn sign(config: &ProviderConfig, input: &Input<'_>, t: i64, headers: &mut HeaderMap) {
    let body = input.body;
    match config {
        ProviderConfig::Github => {
            put(headers, "x-hub-signature-256", &github::sign(SECRET, body));
        }
        ProviderConfig::Stripe => put(headers, "stripe-signature", &stripe::sign(SECRET, t, body)),
        ProviderConfig::Standard => {
            if let Ok(secret) = WebhookSecret::parse(STANDARD_SECRET) {
                put(headers, "webhook-id", input.delivery_id);
                put(headers, "webhook-timestamp", &t.to_string());
                let sig = secret.sign_standard(input.delivery_id, t, body);
                put(headers, "webhook-signature", &sig);
            }
        }
        ProviderConfig::Hmac(c) => {
            let stamp = t.to_string();
            let stamp = c.timestamp_header.as_ref().map(|h| {
                put(headers, h, &stamp);
                stamp.as_str()
            });
            let prefix = hmac_prefix(c, stamp);
            let mac = compute(c.algorithm, SECRET.as_bytes(), &[prefix.as_bytes(), body]);
            let encoded = match c.encoding {
                Encoding::Hex => hex::encode(mac),
                Encoding::Base64 => B64.encode(mac),
            };
            let value = format!("{}{encoded}", c.prefix.as_deref().unwrap_or_default());
            put(headers, &c.header, &value);
        }
        ProviderConfig::PayPal(c) => {
            let time = match input.paypal_time {
                Some(text) => text.to_owned(),
                None => to_rfc3339(t.saturating_mul(1000)),
            };
            let text = paypal::signed_text(input.delivery_id, &time, &c.webhook_id, body);
            let key = SigningKey::<Sha256>::new(paypal_key().clone());
            let sig = B64.encode(key.sign(text.as_bytes()).to_bytes());
            put(headers, "paypal-transmission-id", input.delivery_id);
            put(headers, "paypal-transmission-time", &time);
            put(headers, "paypal-transmission-sig", &sig);
            put(headers, "paypal-cert-url", CERT_URL);
            put(headers, "paypal-auth-algo", "SHA256withRSA");
        }
        ProviderConfig::None(_) => {}
    }
}

fuzz_target!(|input: Input<'_>| {
    let provider = Provider::ALL[usize::from(input.provider) % Provider::ALL.len()];
    let name = provider.as_str();

    // The settings parser sees the fuzzed object; what it accepts must survive a round trip.
    let config = match ProviderConfig::parse(name, &settings_json(&input.settings)) {
        Ok(config) => {
            let again = ProviderConfig::parse(name, &config.to_json());
            assert_eq!(again.as_ref(), Ok(&config), "settings round trip");
            config
        }
        Err(_) => match ProviderConfig::parse(name, &fallback(provider)) {
            Ok(config) => config,
            Err(e) => panic!("fallback settings of {name} refused: {e:?}"),
        },
    };
    let secret = match provider {
        Provider::PayPal | Provider::None => None,
        Provider::Standard => Some(STANDARD_SECRET),
        _ => Some(SECRET),
    };
    let verifier = match config.verifier("fuzz-source", secret) {
        Ok(v) => v,
        Err(e) => panic!("verifier for {name}: {e}"),
    };

    let mut headers = HeaderMap::new();
    for (header, value) in &input.headers {
        let header = match header {
            Name::Known(i) => KNOWN_HEADERS[usize::from(*i) % KNOWN_HEADERS.len()],
            Name::Other(s) => s,
        };
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(header.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(n, v);
        }
    }
    let t = match input.stamp {
        Stamp::Near(offset) => NOW + i64::from(offset),
        Stamp::Edge(i) => EDGES[usize::from(i) % EDGES.len()],
        Stamp::Any(t) => t,
    };
    if input.sign {
        sign(&config, &input, t, &mut headers);
    }

    let req = Inbound {
        source_name: "fuzz-source",
        headers: &headers,
        body: input.body,
        now_secs: NOW,
    };
    let result =
        futures::executor::block_on(process(verifier.as_ref(), &req, &Env { certs: &FixedCert }));
    match &result {
        Ok(verified) => {
            // Forging an HMAC or an RSA signature is out of reach: only signed requests pass,
            // except on a source that verifies nothing.
            assert!(
                input.sign || provider == Provider::None,
                "{name} accepted a forgery"
            );
            assert!(is_valid_event_type(&verified.event_type), "{verified:?}");
            assert!(serde_json::from_str::<Value>(&verified.payload.data).is_ok());
        }
        // GitHub and Stripe sign nothing the fuzzer can spoil once we sign, so a signed request
        // within tolerance must pass verification.
        Err(Rejection::Signature(_))
            if input.sign
                && (provider == Provider::Github
                    || (provider == Provider::Stripe
                        && NOW.abs_diff(t) <= TOLERANCE_SECS.unsigned_abs())) =>
        {
            panic!("a correctly signed {name} request was refused: {result:?}")
        }
        Err(_) => {}
    }
    let _ = verifier.logged_headers();
    let payload = Payload::parse(&headers, input.body);
    let _ = payload.string_at(input.path);
});
