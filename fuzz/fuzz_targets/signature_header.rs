//! Fuzzes the receiver side of Standard Webhooks: `parse_signature_header` on any header value,
//! then `verify` against a fixed secret, checking the answers agree with each other.
#![no_main]

use arbitrary::Arbitrary;
use hookrelay_domain::signing::{parse_signature_header, verify, SIGNATURE_LEN};
use hookrelay_domain::WebhookSecret;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

// The Standard Webhooks specification's test secret: fixed so crashes reproduce.
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    header: &'a str,
    msg_id: &'a str,
    timestamp: i64,
    body: &'a [u8],
}

fn secret() -> &'static WebhookSecret {
    static SECRET_CELL: OnceLock<WebhookSecret> = OnceLock::new();
    SECRET_CELL.get_or_init(|| match WebhookSecret::parse(SECRET) {
        Ok(s) => s,
        Err(e) => panic!("the fixed fuzz secret must parse: {e}"),
    })
}

fuzz_target!(|input: Input<'_>| {
    let secret = secret();
    let parsed = parse_signature_header(input.header);
    // Every kept entry is a full HMAC-SHA256 tag, and there are never more than the entries.
    assert!(parsed.iter().all(|sig| sig.len() == SIGNATURE_LEN));
    assert!(parsed.len() <= input.header.split_ascii_whitespace().count());

    let verified = verify(
        secret,
        input.msg_id,
        input.timestamp,
        input.body,
        input.header,
    );
    let good = secret.sign_standard(input.msg_id, input.timestamp, input.body);
    // Forging HMAC-SHA256 is out of reach, so a fuzzed header verifies only by holding the tag.
    if verified {
        let tag = parse_signature_header(&good);
        assert!(parsed.iter().any(|sig| tag.contains(sig)));
    }
    // Our own signature always verifies, alone or after any junk entries a sender may list.
    assert!(verify(
        secret,
        input.msg_id,
        input.timestamp,
        input.body,
        &good
    ));
    let appended = format!("{} {good}", input.header);
    assert!(verify(
        secret,
        input.msg_id,
        input.timestamp,
        input.body,
        &appended
    ));
});
