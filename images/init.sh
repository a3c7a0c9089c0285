#!/bin/sh
# csdci guest init (busybox sh, PID 1). Embedded into csdci at build time and
# installed as /sbin/init of the virtiofs root and as /init of the initramfs
# (the same script for both; see images/README.md).
#
# Reads /csdci/params (written per run by csdci):
#   CSDCI_SCFTORTURE  scftorture module parameters
#   CSDCI_DURATION_S  seconds to let scftorture run
# Loads scftorture, waits, unloads it (scftorture prints its
# "--- End of test: SUCCESS|FAILURE" line on unload) and powers off.
# Every step prints a "csdci: " line on the console; the host reads them.

export PATH=/sbin:/bin:/usr/sbin:/usr/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
# CONFIG_DEVTMPFS_MOUNT may already have mounted /dev.
grep -q ' /dev ' /proc/mounts || mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp

echo "csdci: init started (kernel $(uname -r), $(nproc) cpus, uptime $(cut -d' ' -f1 /proc/uptime) s)"

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

echo "csdci: rmmod scftorture"
if ! out=$(rmmod scftorture 2>&1); then
	echo "csdci: rmmod scftorture failed: $out"
fi
echo "csdci: workload done"
finish "done"
