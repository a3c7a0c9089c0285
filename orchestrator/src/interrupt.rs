//! SIGINT/SIGTERM: the first asks csdci to stop cleanly (builds are killed,
//! guests stopped, the run journalled as interrupted, exit 130); a second one
//! kills csdci outright (its QEMU, virtiofsd and test processes die with it).
//!
//! One piece of work among several in one process (a bisection or night the
//! dashboard started in `csdci serve`) is stopped the same way without a
//! signal: it runs inside [`scoped`] with a [`Cancel`], and once that is
//! cancelled [`interrupted`] is true on its thread (and on the threads it
//! starts that enter [`current`]) as if SIGTERM had come.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the SIGINT/SIGTERM handler of [`install_interrupt_handler`].
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Makes the first SIGINT/SIGTERM ask the pipeline to stop cleanly (kill make,
/// stop the guest, mark the run interrupted); a second one kills csdci (its
/// QEMU and virtiofsd still die with it).
pub fn install_interrupt_handler() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESETHAND | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        let _ = sigaction(Signal::SIGINT, &action);
        let _ = sigaction(Signal::SIGTERM, &action);
    }
}

/// True once csdci was asked to stop, or the work this thread runs was
/// cancelled (see [`scoped`]).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
        || SCOPE.with(|s| s.borrow().as_ref().is_some_and(Cancel::is_cancelled))
}

/// Asks one piece of work to stop, as SIGTERM asks all of csdci.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag not yet set.
    pub fn new() -> Self {
        Cancel::default()
    }

    /// Stops the work: [`interrupted`] turns true on its threads.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

thread_local! {
    static SCOPE: RefCell<Option<Cancel>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread with `cancel` as its scope: once it is cancelled,
/// [`interrupted`] is true inside `f`. The previous scope comes back after.
pub fn scoped<R>(cancel: &Cancel, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Cancel>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let old = self.0.take();
            SCOPE.with(|s| *s.borrow_mut() = old);
        }
    }
    let old = SCOPE.with(|s| s.borrow_mut().replace(cancel.clone()));
    let _restore = Restore(old);
    f()
}

/// This thread's scope, for a thread it starts that watches [`interrupted`]
/// (it runs its loop inside [`scoped`] with it).
pub fn current() -> Option<Cancel> {
    SCOPE.with(|s| s.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_scope_interrupts_only_its_own_thread() {
        let c = Cancel::new();
        assert!(!interrupted());
        scoped(&c, || {
            assert!(!interrupted());
            c.cancel();
            assert!(interrupted());
            // Another thread outside the scope is not interrupted; one that
            // enters it is.
            let outside = std::thread::spawn(interrupted).join().unwrap();
            assert!(!outside);
            let cur = current().unwrap();
            assert!(
                std::thread::spawn(move || scoped(&cur, interrupted))
                    .join()
                    .unwrap()
            );
        });
        assert!(!interrupted());
    }
}
