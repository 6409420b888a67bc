//! Waiting for the GPU without blocking the caller.
//!
//! wgpu reports a finished buffer mapping through a callback, and on native
//! backends callbacks run only inside `Device::poll`. The async paths never
//! poll with `Wait` themselves: they register the submission they need with
//! the context's [`Poller`], a thread of its own that waits for exactly that
//! submission (`PollType::Wait` with its index, so an application's
//! unrelated GPU work on the same device is not waited for) and thereby runs
//! the callbacks, which complete a [`Signal`] the caller's future awaits. On
//! the web the browser runs the callbacks and no thread is needed.
//!
//! The blocking wrappers do the same wait on the calling thread instead
//! ([`wait_blocking`]), so a blocking run costs no thread hand-off.

use crate::error::{Error, Result};
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};

/// A one-shot value set by a callback and awaited by a future.
pub(crate) struct Signal<T> {
    state: Arc<Mutex<(Option<T>, Option<Waker>)>>,
}

impl<T> Clone for Signal<T> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
        }
    }
}

impl<T> Signal<T> {
    /// An unset signal.
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new((None, None))),
        }
    }

    /// Sets the value and wakes the task waiting for it.
    pub fn set(&self, value: T) {
        let waker = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.0 = Some(value);
            s.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Future for Signal<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<T> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match s.0.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// A submission to wait for and the signal to set when it is done.
type Job = (wgpu::SubmissionIndex, Signal<Result<()>>);

/// The context's polling thread, started at the first async wait.
pub(crate) struct Poller {
    device: wgpu::Device,
    tx: Mutex<Option<mpsc::Sender<Job>>>,
}

impl Poller {
    /// A poller for `device`; no thread yet.
    pub fn new(device: wgpu::Device) -> Self {
        Self {
            device,
            tx: Mutex::new(None),
        }
    }

    /// Resolves once submission `index` has finished on the GPU and its
    /// callbacks have run. Never blocks the caller.
    pub fn wait(&self, index: wgpu::SubmissionIndex) -> Signal<Result<()>> {
        let signal = Signal::new();
        if cfg!(target_arch = "wasm32") {
            signal.set(Ok(()));
            return signal;
        }
        let mut tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        if tx.is_none() {
            let (sender, rx) = mpsc::channel::<Job>();
            let device = self.device.clone();
            let spawned = std::thread::Builder::new()
                .name("resincept-poll".into())
                .spawn(move || {
                    // Ends when the context (the sender) is dropped.
                    for (index, done) in rx {
                        done.set(wait_blocking(&device, index));
                    }
                });
            if let Err(e) = spawned {
                signal.set(Err(Error::Gpu(format!(
                    "starting the GPU polling thread: {e}"
                ))));
                return signal;
            }
            *tx = Some(sender);
        }
        let sender = tx.as_ref().expect("set above");
        if sender.send((index, signal.clone())).is_err() {
            signal.set(Err(Error::Gpu("the GPU polling thread has stopped".into())));
        }
        signal
    }
}

/// Blocks the calling thread until submission `index` has finished and its
/// callbacks have run; waits for nothing submitted after it.
pub(crate) fn wait_blocking(device: &wgpu::Device, index: wgpu::SubmissionIndex) -> Result<()> {
    device
        .poll(wgpu::PollType::Wait {
            submission_index: Some(index),
            timeout: None,
        })
        .map(|_| ())
        .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))
}
