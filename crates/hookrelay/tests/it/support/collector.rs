//! A tiny OTLP/HTTP collector on 127.0.0.1:0 that decodes every `POST /v1/traces`
//! (`ExportTraceServiceRequest`, protobuf) and keeps the spans; and a collector that hangs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use prost::Message;
use tokio::net::TcpListener;

/// One exported span, flattened for assertions (ids in lower-case hex, values as text).
#[derive(Clone, Debug)]
pub struct ExportedSpan {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    /// `SpanKind` as numbered by OTLP: 1 internal, 2 server, 3 client.
    pub kind: i32,
    /// `Status.code` as numbered by OTLP: 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    pub attributes: HashMap<String, String>,
    /// The resource the span was exported under.
    pub resource: HashMap<String, String>,
    /// `(trace id, span id)` of each linked span.
    pub links: Vec<(String, String)>,
}

impl ExportedSpan {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// One export request as it arrived.
#[derive(Clone, Debug)]
pub struct Post {
    pub path: String,
    pub content_type: String,
    /// Whether the body decoded as an `ExportTraceServiceRequest`.
    pub decoded: bool,
}

#[derive(Default)]
struct State {
    spans: Vec<ExportedSpan>,
    posts: Vec<Post>,
}

pub struct Collector {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Collector {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let addr = super::serve_http(move |req| handle(shared.clone(), req)).await;
        Self { addr, state }
    }

    /// The base URL to configure (`HOOKRELAY_OTLP_ENDPOINT`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn spans(&self) -> Vec<ExportedSpan> {
        self.state.lock().unwrap().spans.clone()
    }

    pub fn posts(&self) -> Vec<Post> {
        self.state.lock().unwrap().posts.clone()
    }

    /// The first span `pick` accepts, if one has arrived.
    pub fn find(&self, pick: impl Fn(&ExportedSpan) -> bool) -> Option<ExportedSpan> {
        self.state
            .lock()
            .unwrap()
            .spans
            .iter()
            .find(|s| pick(s))
            .cloned()
    }
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let decoded = ExportTraceServiceRequest::decode(body.as_ref()).ok();
    let mut s = state.lock().unwrap();
    s.posts.push(Post {
        path: path.clone(),
        content_type,
        decoded: decoded.is_some(),
    });
    let Some(request) = decoded.filter(|_| path == "/v1/traces") else {
        return Response::builder()
            .status(400)
            .body(Full::new(Bytes::from_static(b"not an OTLP trace export")))
            .expect("valid reply");
    };
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                s.spans.push(ExportedSpan {
                    name: span.name,
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    kind: span.kind,
                    status_code: span.status.map_or(0, |st| st.code),
                    attributes: attributes(&span.attributes),
                    resource: resource.clone(),
                    links: span
                        .links
                        .iter()
                        .map(|l| (hex::encode(&l.trace_id), hex::encode(&l.span_id)))
                        .collect(),
                });
            }
        }
    }
    Response::builder()
        .status(200)
        .header("content-type", "application/x-protobuf")
        .body(Full::new(Bytes::from(
            ExportTraceServiceResponse::default().encode_to_vec(),
        )))
        .expect("valid reply")
}

fn attributes(kvs: &[KeyValue]) -> HashMap<String, String> {
    kvs.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                Some(any_value::Value::IntValue(i)) => i.to_string(),
                Some(any_value::Value::BoolValue(b)) => b.to_string(),
                Some(any_value::Value::DoubleValue(d)) => d.to_string(),
                Some(other) => format!("{other:?}"),
                None => String::new(),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

/// A collector that accepts connections and never answers (a hung or black-holed one). The
/// connections stay open until the returned listener task is dropped with the runtime.
pub async fn hanging_collector() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind hanging collector");
    let addr = listener.local_addr().expect("hanging collector addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}
