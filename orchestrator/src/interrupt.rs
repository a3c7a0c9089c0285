//! SIGINT/SIGTERM: the first asks csdci to stop cleanly (builds are killed,
//! guests stopped, the run journalled as interrupted, exit 130); a second one
//! kills csdci outright (its QEMU, virtiofsd and test processes die with it).

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

/// True once csdci was asked to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
