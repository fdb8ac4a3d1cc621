//! The server side of `hookrelay listen`: the listeners connected to each `relay` webhook (in
//! this process's memory), and the attempts handed to them that wait for the local answer.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use utoipa::ToSchema;

/// Deliveries queued to one listener before it counts as busy and the next one is tried.
const LISTENER_QUEUE: usize = 64;

/// One attempt as a listener receives it: forward `body` with `headers` to the local URL.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RelayMessage {
    /// Names this attempt in the result posted back.
    pub token: String,
    pub delivery_id: String,
    pub event_type: String,
    /// Attempt number (`X-Webhook-Attempt`).
    pub attempt: u32,
    /// Every header of the request, signatures included.
    pub headers: BTreeMap<String, String>,
    /// The request body (JSON text), exactly as signed.
    pub body: String,
}

/// What the local receiver did, as the listener reports it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelayAnswer {
    pub token: String,
    /// The local receiver's HTTP status; absent when it could not be reached.
    pub status: Option<u16>,
    /// The first 4 KiB of its answer.
    pub body: Option<String>,
    pub duration_ms: Option<u32>,
    /// Why the local receiver could not be reached (refused, timed out, …).
    pub error: Option<String>,
}

/// Why a relay attempt got no answer.
#[derive(Debug, PartialEq, Eq)]
pub enum RelayFailure {
    /// No listener is connected for the webhook (to this node), or all are saturated.
    NoListener,
    /// The listener did not answer in time.
    TimedOut,
    /// The listener disconnected before answering.
    Vanished,
}

struct Listener {
    id: u64,
    tx: mpsc::Sender<RelayMessage>,
}

struct Pending {
    webhook_id: String,
    listener: u64,
    answer: oneshot::Sender<RelayAnswer>,
}

#[derive(Default)]
struct HubState {
    listeners: HashMap<String, Vec<Listener>>,
    pending: HashMap<String, Pending>,
}

/// Connected listeners and attempts in flight to them.
#[derive(Default)]
pub struct RelayHub {
    state: Mutex<HubState>,
    /// Listener ids, and the round-robin turn between a webhook's listeners.
    counter: AtomicU64,
}

/// One connected listener; dropping it (the connection closed) disconnects it, and attempts
/// it had not answered fail at once as `Vanished`.
pub struct Subscription {
    hub: Arc<RelayHub>,
    webhook_id: String,
    id: u64,
    pub messages: mpsc::Receiver<RelayMessage>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut state = self.hub.lock();
        if let Some(list) = state.listeners.get_mut(&self.webhook_id) {
            list.retain(|l| l.id != self.id);
            if list.is_empty() {
                state.listeners.remove(&self.webhook_id);
            }
        }
        state.pending.retain(|_, p| p.listener != self.id);
    }
}

impl RelayHub {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connects a listener for `webhook_id`.
    pub fn subscribe(self: &Arc<Self>, webhook_id: &str) -> Subscription {
        let id = self.counter.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(LISTENER_QUEUE);
        self.lock()
            .listeners
            .entry(webhook_id.to_owned())
            .or_default()
            .push(Listener { id, tx });
        Subscription {
            hub: self.clone(),
            webhook_id: webhook_id.to_owned(),
            id,
            messages: rx,
        }
    }

    /// Listeners connected for `webhook_id` now.
    pub fn listeners(&self, webhook_id: &str) -> usize {
        self.lock().listeners.get(webhook_id).map_or(0, Vec::len)
    }

    /// Hands `message` to one of the webhook's listeners (taking turns) and waits up to
    /// `timeout` for its answer.
    pub async fn deliver(
        &self,
        webhook_id: &str,
        mut message: RelayMessage,
        timeout: Duration,
    ) -> Result<RelayAnswer, RelayFailure> {
        message.token = format!("rly_{}", ulid::Ulid::new());
        let token = message.token.clone();
        let (answer_tx, answer_rx) = oneshot::channel();
        {
            let mut state = self.lock();
            let list = state
                .listeners
                .get(webhook_id)
                .ok_or(RelayFailure::NoListener)?;
            let turn = self.counter.fetch_add(1, Ordering::Relaxed) as usize;
            let mut chosen = None;
            for i in 0..list.len() {
                let listener = &list[(turn + i) % list.len()];
                match listener.tx.try_send(message) {
                    Ok(()) => {
                        chosen = Some(listener.id);
                        break;
                    }
                    Err(
                        mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m),
                    ) => message = m,
                }
            }
            let listener = chosen.ok_or(RelayFailure::NoListener)?;
            // Registered under the same lock the answer needs: it cannot arrive first.
            state.pending.insert(
                token.clone(),
                Pending {
                    webhook_id: webhook_id.to_owned(),
                    listener,
                    answer: answer_tx,
                },
            );
        }
        match tokio::time::timeout(timeout, answer_rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(RelayFailure::Vanished),
            Err(_) => {
                self.lock().pending.remove(&token);
                Err(RelayFailure::TimedOut)
            }
        }
    }

    /// Delivers a listener's answer; `false` when no attempt of this webhook waits for it (it
    /// timed out already, or the token is not this webhook's).
    pub fn complete(&self, webhook_id: &str, answer: RelayAnswer) -> bool {
        let mut state = self.lock();
        let ours = state
            .pending
            .get(&answer.token)
            .is_some_and(|p| p.webhook_id == webhook_id);
        if !ours {
            return false;
        }
        match state.pending.remove(&answer.token) {
            Some(p) => p.answer.send(answer).is_ok(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> RelayMessage {
        RelayMessage {
            token: String::new(),
            delivery_id: "dlv_1".into(),
            event_type: "member.created".into(),
            attempt: 1,
            headers: BTreeMap::new(),
            body: "{}".into(),
        }
    }

    #[tokio::test]
    async fn answers_reach_the_waiting_attempt_and_listeners_take_turns() {
        let hub = Arc::new(RelayHub::default());
        assert_eq!(
            hub.deliver("wh_1", message(), Duration::from_secs(1))
                .await
                .unwrap_err(),
            RelayFailure::NoListener
        );
        let mut a = hub.subscribe("wh_1");
        let mut b = hub.subscribe("wh_1");
        assert_eq!(hub.listeners("wh_1"), 2);
        let mut served = [0, 0];
        for _ in 0..4 {
            let h = hub.clone();
            let pending =
                tokio::spawn(
                    async move { h.deliver("wh_1", message(), Duration::from_secs(5)).await },
                );
            let (i, m) = tokio::select! {
                m = a.messages.recv() => (0, m.unwrap()),
                m = b.messages.recv() => (1, m.unwrap()),
            };
            served[i] += 1;
            let answer = |token: &str| RelayAnswer {
                token: token.to_owned(),
                status: Some(204),
                ..Default::default()
            };
            assert!(!hub.complete("wh_other", answer(&m.token)));
            assert!(hub.complete("wh_1", answer(&m.token)));
            assert!(!hub.complete("wh_1", answer(&m.token)), "answered once");
            assert_eq!(pending.await.unwrap().unwrap().status, Some(204));
        }
        assert!(served[0] > 0 && served[1] > 0, "{served:?}");
    }

    #[tokio::test]
    async fn a_vanished_listener_fails_its_attempts_at_once_and_silence_times_out() {
        let hub = Arc::new(RelayHub::default());
        let sub = hub.subscribe("wh_1");
        let h = hub.clone();
        let pending =
            tokio::spawn(
                async move { h.deliver("wh_1", message(), Duration::from_secs(60)).await },
            );
        until(|| hub.lock().pending.len() == 1).await;
        drop(sub);
        assert_eq!(pending.await.unwrap().unwrap_err(), RelayFailure::Vanished);
        assert_eq!(hub.listeners("wh_1"), 0);
        let _quiet = hub.subscribe("wh_1");
        let r = hub
            .deliver("wh_1", message(), Duration::from_millis(50))
            .await;
        assert_eq!(r.unwrap_err(), RelayFailure::TimedOut);
        assert!(hub.lock().pending.is_empty());
    }

    /// Polls `check` (yielding between tries) for up to 5 s.
    pub(super) async fn until(mut check: impl FnMut() -> bool) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if check() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }
}
