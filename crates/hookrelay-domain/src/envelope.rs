//! The JSON body a receiving endpoint gets for `kind: http`. Built by concatenation around the
//! event's stored JSON so the data is never parsed again on the delivery hot path.

/// `{"event": …, "timestamp": …, "eventId": …, "data": …}`; `data_json` must be valid JSON
/// (it was validated when the event was accepted).
pub fn http_body(
    event_type: &str,
    timestamp_rfc3339: &str,
    event_id: &str,
    data_json: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + event_type.len() + event_id.len() + data_json.len());
    out.extend_from_slice(b"{\"event\":");
    push_json_string(&mut out, event_type);
    out.extend_from_slice(b",\"timestamp\":");
    push_json_string(&mut out, timestamp_rfc3339);
    out.extend_from_slice(b",\"eventId\":");
    push_json_string(&mut out, event_id);
    out.extend_from_slice(b",\"data\":");
    out.extend_from_slice(data_json.as_bytes());
    out.push(b'}');
    out
}

fn push_json_string(out: &mut Vec<u8>, s: &str) {
    // serde_json cannot fail to serialise a &str.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_the_contract_envelope() {
        let body = http_body(
            "member.created",
            "2026-11-23T10:00:00.000Z",
            "evt_1",
            r#"{"id":42,"name":"Ada \"Lovelace\""}"#,
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"event": "member.created", "timestamp": "2026-11-23T10:00:00.000Z",
                               "eventId": "evt_1", "data": {"id": 42, "name": "Ada \"Lovelace\""}})
        );
    }
}
