#!/bin/sh
# csdci guest init (busybox sh, PID 1). Embedded into csdci at build time and
# installed as /sbin/init of the virtiofs root and as /init of the initramfs
# (the same script for both; see images/README.md).
#
# Reads /csdci/params (written per run by csdci):
#   CSDCI_SCFTORTURE  scftorture module parameters
#   CSDCI_DURATION_S  seconds to let scftorture run
#   CSDCI_LOAD        background load beside scftorture: unset/none, or tlb
#                     (/bin/csdci-tlbload, images/tlbload.c)
#   CSDCI_LOAD_PROCS  its processes at once
# Loads scftorture, starts the background load, waits, stops the load,
# unloads scftorture (it prints its "--- End of test: SUCCESS|FAILURE" line
# on unload) and powers off. The TLB shootdowns the kernel counted
# (/proc/interrupts) are printed at the workload's start and end.
# Every step prints a "csdci: " line on the console; the host reads them.

export PATH=/sbin:/bin:/usr/sbin:/usr/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
# CONFIG_DEVTMPFS_MOUNT may already have mounted /dev.
grep -q ' /dev ' /proc/mounts || mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp

echo "csdci: init started (kernel $(uname -r), $(nproc) cpus, uptime $(cut -d' ' -f1 /proc/uptime) s)"

# Sum of the "TLB:" row of /proc/interrupts (the CPUs online now); empty
# where there is none.
tlb_shootdowns() {
	awk '$1 == "TLB:" { s = 0; for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i; print s; exit }' /proc/interrupts 2>/dev/null
}

finish() {
	echo "csdci: powering off ($1)"
	sync
	poweroff -f
	# poweroff only returns when the kernel cannot power off (no ACPI).
	echo "csdci: poweroff failed"
	while :; do sleep 1000; done
}

if ! . /csdci/params; then
	echo "csdci: cannot read /csdci/params"
	finish "no params"
fi

release=$(uname -r)
if [ ! -d "/lib/modules/$release" ]; then
	echo "csdci: no modules for kernel $release in /lib/modules: $(ls /lib/modules)"
	finish "modprobe failed"
fi
if [ ! -f "/lib/modules/$release/modules.dep" ]; then
	depmod
fi

echo "csdci: modprobe scftorture $CSDCI_SCFTORTURE"
# shellcheck disable=SC2086 # the parameters are meant to be split
if ! out=$(modprobe scftorture $CSDCI_SCFTORTURE 2>&1); then
	echo "csdci: modprobe scftorture failed: $out"
	finish "modprobe failed"
fi
[ -n "$out" ] && echo "$out"
tlb_start=$(tlb_shootdowns)
[ -n "$tlb_start" ] && echo "csdci: tlb shootdowns at workload start: $tlb_start"
load_pid=
case "${CSDCI_LOAD:-none}" in
none) ;;
tlb)
	if [ -x /bin/csdci-tlbload ]; then
		# It prints "csdci: background load started: ..." itself.
		/bin/csdci-tlbload -p "${CSDCI_LOAD_PROCS:-1}" &
		load_pid=$!
	else
		echo "csdci: background load tlb: /bin/csdci-tlbload is missing"
	fi
	;;
*) echo "csdci: background load $CSDCI_LOAD: unknown, none started" ;;
esac
echo "csdci: workload running for $CSDCI_DURATION_S s"

# Sleep in steps with a heartbeat, so a silent console means a stuck guest.
left=$CSDCI_DURATION_S
while [ "$left" -gt 0 ]; do
	step=10
	[ "$left" -lt "$step" ] && step=$left
	sleep "$step"
	left=$((left - step))
	[ "$left" -gt 0 ] && echo "csdci: workload running, $left s left"
done

if [ -n "$load_pid" ]; then
	if kill -0 "$load_pid" 2>/dev/null; then
		echo "csdci: stopping background load"
		kill -TERM "$load_pid"
	fi
	# It prints "csdci: background load done: N processes, ..." and exits 0.
	wait "$load_pid"
	rc=$?
	[ "$rc" -ne 0 ] && echo "csdci: background load ended early (exit status $rc)"
fi
tlb_end=$(tlb_shootdowns)
[ -n "$tlb_start" ] && [ -n "$tlb_end" ] &&
	echo "csdci: tlb shootdowns during the workload: $((tlb_end - tlb_start)) ($tlb_end at its end)"
echo "csdci: rmmod scftorture"
if ! out=$(rmmod scftorture 2>&1); then
	echo "csdci: rmmod scftorture failed: $out"
fi
echo "csdci: workload done"
finish "done"
