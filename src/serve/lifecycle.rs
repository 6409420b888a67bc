//! The server's life: loading → ready → draining → stopped, and the count
//! of requests in flight that a shutdown waits for.
//!
//! ```text
//!            model compiled          SIGTERM / Ctrl-C         drained or grace over
//! Loading ───and warmed up──▶ Ready ───────────────▶ Draining ─────────────────────▶ Stopped
//!    │                                                  ▲
//!    └────────────── SIGTERM / Ctrl-C ──────────────────┘        (a failed load: Stopped)
//! ```
//!
//! Readiness is true only in `Ready`; liveness holds until `Stopped`. An
//! inference request enters with [`Lifecycle::begin`], which refuses it
//! unless the server is ready, and holds its [`InFlight`] guard until it
//! is answered; [`Lifecycle::drained`] resolves when none is left. `begin`
//! counts first and checks the state second, so a request is either
//! refused or counted before draining starts waiting: none slips through.

use super::error::ServeError;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use tokio::sync::Notify;

/// A state of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Compiling and warming up the model: live, not ready.
    Loading = 0,
    /// Serving.
    Ready = 1,
    /// Shutting down: finishing accepted requests, refusing new ones.
    Draining = 2,
    /// Done (or the model failed to load).
    Stopped = 3,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            0 => State::Loading,
            1 => State::Ready,
            2 => State::Draining,
            _ => State::Stopped,
        }
    }
}

/// The state and the in-flight count, shared by every handler.
#[derive(Debug)]
pub struct Lifecycle {
    state: AtomicU8,
    in_flight: AtomicUsize,
    idle: Notify,
    changed: Notify,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            state: AtomicU8::new(State::Loading as u8),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            changed: Notify::new(),
        }
    }
}

/// A request in flight; dropping it (answered, failed, or its client gone)
/// counts it out.
#[derive(Debug)]
pub struct InFlight(Arc<Lifecycle>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Lifecycle {
    /// A server that is loading.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The current state.
    pub fn state(&self) -> State {
        State::from_u8(self.state.load(SeqCst))
    }

    /// Whether `GET /v2/health/ready` says ready.
    pub fn is_ready(&self) -> bool {
        self.state() == State::Ready
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(SeqCst)
    }

    /// Loading → Ready (the model is compiled and warmed up). False when
    /// a shutdown began meanwhile (the server stays down).
    pub fn set_ready(&self) -> bool {
        let ok = self
            .state
            .compare_exchange(State::Loading as u8, State::Ready as u8, SeqCst, SeqCst)
            .is_ok();
        self.changed.notify_waiters();
        ok
    }

    /// Loading or Ready → Draining: readiness turns false at once and new
    /// requests are refused. False when already draining or stopped.
    pub fn drain(&self) -> bool {
        let mut cur = self.state.load(SeqCst);
        loop {
            if cur >= State::Draining as u8 {
                return false;
            }
            match self
                .state
                .compare_exchange(cur, State::Draining as u8, SeqCst, SeqCst)
            {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        self.changed.notify_waiters();
        true
    }

    /// Any state → Stopped.
    pub fn stop(&self) {
        self.state.store(State::Stopped as u8, SeqCst);
        self.changed.notify_waiters();
        self.idle.notify_waiters();
    }

    /// Admits an inference request: a guard while the server is ready, a
    /// 503 naming the reason otherwise.
    pub fn begin(self: &Arc<Self>) -> Result<InFlight, ServeError> {
        self.in_flight.fetch_add(1, SeqCst);
        let guard = InFlight(self.clone());
        match self.state() {
            State::Ready => Ok(guard),
            State::Loading => Err(ServeError::unavailable(
                "the model is still compiling and warming up; retry when \
                 /v2/health/ready answers 200",
            )),
            State::Draining | State::Stopped => Err(ServeError::unavailable(
                "the server is shutting down and takes no new requests",
            )),
        }
    }

    /// Resolves when no request is in flight.
    pub async fn drained(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.in_flight.load(SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Resolves when the state is no longer `from`.
    pub async fn left(&self, from: State) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.state() != from {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn requests_are_admitted_only_when_ready() {
        let l = Lifecycle::new();
        let e = l.begin().unwrap_err();
        assert!(e.message.contains("still compiling"), "{e}");
        assert_eq!(l.in_flight(), 0, "a refused request is not counted");
        assert!(l.set_ready());
        assert!(l.is_ready());
        let g = l.begin().unwrap();
        assert_eq!(l.in_flight(), 1);
        assert!(l.drain());
        assert!(!l.is_ready(), "readiness turns false at once");
        assert!(!l.drain(), "draining twice is a no-op");
        let e = l.begin().unwrap_err();
        assert!(e.message.contains("shutting down"), "{e}");
        assert_eq!(e.http_status(), 503);
        drop(g);
        assert_eq!(l.in_flight(), 0);
        l.stop();
        assert_eq!(l.state(), State::Stopped);
        assert!(!l.set_ready(), "a stopped server does not come back");
    }

    /// A shutdown during loading: the model finishing later does not make
    /// the server ready.
    #[test]
    fn a_shutdown_while_loading_stays_down() {
        let l = Lifecycle::new();
        assert!(l.drain());
        assert!(!l.set_ready());
        assert_eq!(l.state(), State::Draining);
    }

    /// `drained` waits for every guard, from any thread, and resolves at
    /// once when none is held.
    #[test]
    fn drained_waits_for_every_request_in_flight() {
        let l = Lifecycle::new();
        rt().block_on(l.drained());
        l.set_ready();
        let guards: Vec<InFlight> = (0..8).map(|_| l.begin().unwrap()).collect();
        l.drain();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let l = l.clone();
            std::thread::spawn(move || {
                rt().block_on(l.drained());
                tx.send(()).unwrap();
            })
        };
        let mut guards = guards;
        while let Some(g) = guards.pop() {
            assert!(
                rx.recv_timeout(Duration::from_millis(20)).is_err(),
                "drained with {} in flight",
                guards.len() + 1
            );
            std::thread::spawn(move || drop(g)).join().unwrap();
        }
        rx.recv_timeout(Duration::from_secs(30))
            .expect("drained did not resolve with nothing in flight");
        waiter.join().unwrap();
    }

    #[test]
    fn left_resolves_on_a_state_change() {
        let l = Lifecycle::new();
        let l2 = l.clone();
        let t = std::thread::spawn(move || rt().block_on(l2.left(State::Loading)));
        std::thread::sleep(Duration::from_millis(10));
        l.set_ready();
        t.join().unwrap();
        rt().block_on(l.left(State::Loading));
    }
}
