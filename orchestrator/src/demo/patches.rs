//! The demo's kernel changes, written after the seed report: the regression
//! (destination-CPU `csd_data` for single async calls under CSD-lock debugging),
//! and the fix (atomic test-and-set `csd_lock()` when CSD-lock debugging is on).
//! Each is an anchored text edit of `kernel/smp.c` that fails with a clear error
//! when the file does not look like the one it was written for.

use super::Error;

/// Path of the file both patches edit.
pub const SMP_C: &str = "kernel/smp.c";

/// Subject of the regression commit.
pub const REGRESSION_SUBJECT: &str = "smp: Improve smp_call_function_single() CSD-lock diagnostics";

/// Commit message body of the regression commit.
pub const REGRESSION_BODY: &str = "\
When CSD-lock debugging reports a stuck smp_call_function_single() request,
the report names the sending CPU's csd_data, which says nothing about the
CPU that failed to respond.  Use the destination CPU's csd_data for the
!wait path when csdlock_debug is enabled, so that a stuck CSD lock can be
associated with the target CPU directly.

No functional change when CSD-lock debugging is disabled.";

/// Subject of the fix commit (branch `fix`).
pub const FIX_SUBJECT: &str = "smp: Make csd_lock() atomic when CSD-lock debugging is enabled";

/// Commit message body of the fix commit.
pub const FIX_BODY: &str = "\
With CSD-lock debugging, smp_call_function_single() uses the destination
CPU's csd_data, so several sending CPUs can acquire the same CSD.  csd_lock()
is not an atomic test-and-set: two senders can both observe the lock clear,
both set CSD_FLAG_LOCK and both enqueue the same llist node.  Adding a node
that is already the queue head makes it point to itself and the target CPU
spins in __flush_smp_call_function_queue(): a soft lockup with
\"csd: Detected non-responsive CSD lock\" reports.

Make csd_lock() an atomic test-and-set when csdlock_debug_enabled is set.";

const DEFINE_CSD_DATA: &str =
    "static DEFINE_PER_CPU_SHARED_ALIGNED(call_single_data_t, csd_data);\n";

const HELPER: &str = "
#ifdef CONFIG_CSD_LOCK_WAIT_DEBUG
/*
 * With CSD-lock debugging enabled, use the destination CPU's csd_data so that
 * a stuck CSD lock can be associated with the CPU it was sent to.
 */
static call_single_data_t *get_single_csd_data(int cpu)
{
	if (static_branch_unlikely(&csdlock_debug_enabled))
		return per_cpu_ptr(&csd_data, cpu);
	return this_cpu_ptr(&csd_data);
}
#else
static call_single_data_t *get_single_csd_data(int cpu)
{
	return this_cpu_ptr(&csd_data);
}
#endif
";

const SINGLE_OLD: &str =
    "\tif (!wait) {\n\t\tcsd = this_cpu_ptr(&csd_data);\n\t\tcsd_lock(csd);\n\t}\n";
const SINGLE_NEW: &str =
    "\tif (!wait) {\n\t\tcsd = get_single_csd_data(cpu);\n\t\tcsd_lock(csd);\n\t}\n";

const CSD_LOCK_OLD: &str = "static __always_inline void csd_lock(call_single_data_t *csd)
{
	csd_lock_wait(csd);
	csd->node.u_flags |= CSD_FLAG_LOCK;

	/*
	 * prevent CPU from reordering the above assignment
	 * to ->flags with any subsequent assignments to other
	 * fields of the specified call_single_data_t structure:
	 */
	smp_wmb();
}
";

const CSD_LOCK_ATOMIC: &str = "#ifdef CONFIG_CSD_LOCK_WAIT_DEBUG
static __always_inline void csd_lock(call_single_data_t *csd)
{
	if (static_branch_unlikely(&csdlock_debug_enabled)) {
		unsigned int flags;

		for (;;) {
			__csd_lock_wait(csd);
			flags = READ_ONCE(csd->node.u_flags);
			if (!(flags & CSD_FLAG_LOCK) &&
			    try_cmpxchg_acquire(&csd->node.u_flags, &flags,
						flags | CSD_FLAG_LOCK))
				break;
			cpu_relax();
		}
	} else {
		csd_lock_wait(csd);
		csd->node.u_flags |= CSD_FLAG_LOCK;
	}

	/*
	 * prevent CPU from reordering the above assignment
	 * to ->flags with any subsequent assignments to other
	 * fields of the specified call_single_data_t structure:
	 */
	smp_wmb();
}
#else
";

fn replace_once(text: &str, anchor: &str, with: &str, what: &str) -> Result<String, Error> {
    match text.matches(anchor).count() {
        1 => Ok(text.replacen(anchor, with, 1)),
        n => Err(Error::Anchor {
            file: SMP_C,
            what: what.to_string(),
            found: n,
        }),
    }
}

/// Applies the regression to the text of `kernel/smp.c`.
pub fn regression(smp_c: &str) -> Result<String, Error> {
    let with_helper = format!("{DEFINE_CSD_DATA}{HELPER}");
    let text = replace_once(
        smp_c,
        DEFINE_CSD_DATA,
        &with_helper,
        "the csd_data per-CPU definition",
    )?;
    replace_once(
        &text,
        SINGLE_OLD,
        SINGLE_NEW,
        "the !wait branch of smp_call_function_single()",
    )
}

/// Applies the fix (atomic `csd_lock()` under CSD-lock debugging).
pub fn fix(smp_c: &str) -> Result<String, Error> {
    let with_fix = format!("{CSD_LOCK_ATOMIC}{CSD_LOCK_OLD}#endif\n");
    replace_once(smp_c, CSD_LOCK_OLD, &with_fix, "the csd_lock() definition")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        format!(
            "head\n{CSD_LOCK_OLD}\nmid\n{DEFINE_CSD_DATA}\nint f(int cpu, int wait)\n{{\n{SINGLE_OLD}}}\n"
        )
    }

    #[test]
    fn regression_routes_async_single_calls_through_the_helper() {
        let out = regression(&sample()).unwrap();
        assert!(out.contains("csd = get_single_csd_data(cpu);"));
        assert!(out.contains("return per_cpu_ptr(&csd_data, cpu);"));
        assert!(!out.contains("csd = this_cpu_ptr(&csd_data);\n\t\tcsd_lock"));
    }

    #[test]
    fn fix_makes_csd_lock_atomic_and_keeps_the_plain_one() {
        let out = fix(&regression(&sample()).unwrap()).unwrap();
        assert!(out.contains("try_cmpxchg_acquire(&csd->node.u_flags"));
        assert_eq!(
            out.matches("static __always_inline void csd_lock(").count(),
            2
        );
    }

    #[test]
    fn a_foreign_smp_c_is_a_clear_error() {
        let err = regression("nothing here").unwrap_err().to_string();
        assert!(err.contains("kernel/smp.c"), "{err}");
        assert!(err.contains("csd_data"), "{err}");
    }
}
