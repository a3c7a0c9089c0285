// csdci-tlbload: the guest's background load (RunSpec `load: tlb`).
//
// Keeps PROCS short-lived processes running at once until SIGTERM (or -d
// SECONDS). Each process starts one thread per possible CPU, pinned to it with
// sched_setaffinity; for MS milliseconds every thread maps an anonymous
// region, touches each page, write-protects it (mprotect) and unmaps it; then
// the threads end and the process exits. mprotect and munmap of a mapping of
// a multi-threaded process, and the exit's teardown of its page tables
// (exit_mmap -> tlb_finish_mmu -> flush_tlb_mm_range), send TLB shootdowns
// through smp_call_function_many to every CPU the process ran on: the IPIs
// that were in flight in the seed's CSD-lock lockup. Runs at nice NICE (19 by
// default: the nice of scftorture's invokers, so on each CPU the load takes
// at most about the share of one invoker).
//
// Prints "csdci: background load started: ..." when it starts and, on
// SIGTERM, "csdci: background load done: P processes, T threads, C cycles
// in S s" after its last process has exited.
//
// Built by csdci on the host: gcc -static -O2 -pthread (the guest has no libc).

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CPUS 1024

// Counters shared by every process (a MAP_SHARED page made before the forks).
struct counters {
	unsigned long processes; // processes that ran their threads and exited
	unsigned long threads;   // threads started
	unsigned long cycles;    // map/touch/mprotect/unmap cycles
};

static struct counters *shared;
static volatile sig_atomic_t stop;
static int run_ms = 10;
static size_t map_bytes = 16 * 1024;
static long page_size = 4096;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *thread_main(void *arg)
{
	long cpu = (long)arg;
	cpu_set_t set;
	unsigned long cycles = 0;
	double deadline;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	// An offline CPU (CPU hotplug) refuses: the thread then runs anywhere.
	(void)sched_setaffinity(0, sizeof(set), &set);
	__atomic_fetch_add(&shared->threads, 1, __ATOMIC_RELAXED);
	deadline = now_s() + run_ms / 1000.0;
	do {
		char *p = mmap(NULL, map_bytes, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			break;
		for (size_t off = 0; off < map_bytes; off += page_size)
			p[off] = (char)off;
		mprotect(p, map_bytes, PROT_READ);
		(void)*(volatile char *)p;
		munmap(p, map_bytes);
		cycles++;
	} while (now_s() < deadline);
	__atomic_fetch_add(&shared->cycles, cycles, __ATOMIC_RELAXED);
	return NULL;
}

// One short-lived process: a thread per CPU, then exit (and its shootdowns).
static void worker(int ncpus)
{
	pthread_t t[MAX_CPUS];
	int started = 0;

	for (long cpu = 0; cpu < ncpus; cpu++) {
		if (pthread_create(&t[started], NULL, thread_main, (void *)cpu) == 0)
			started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	if (started > 0)
		__atomic_fetch_add(&shared->processes, 1, __ATOMIC_RELAXED);
	_exit(0);
}

// Possible CPUs: one past the highest in /sys/devices/system/cpu/possible
// ("0-3", "0,2-5"), so CPUs offline now (CPU hotplug) are counted; else
// the CPUs this process may run on. (Not sysconf(_SC_NPROCESSORS_CONF):
// static glibc's sysfs reader crashed in a csdci guest.)
static long possible_cpus(void)
{
	char buf[4096];
	long max = -1;
	FILE *f = fopen("/sys/devices/system/cpu/possible", "r");

	if (f) {
		if (fgets(buf, sizeof(buf), f)) {
			for (char *p = buf; *p;) {
				char *end;
				long v = strtol(p, &end, 10);
				if (end == p)
					break;
				if (v > max)
					max = v;
				p = end;
				while (*p == '-' || *p == ',' || *p == '\n')
					p++;
			}
		}
		fclose(f);
	}
	if (max < 0) {
		cpu_set_t set;

		if (sched_getaffinity(0, sizeof(set), &set) == 0)
			max = CPU_COUNT(&set) - 1;
	}
	return max + 1;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-p PROCS] [-m MS] [-k KIB] [-n NICE] [-d SECONDS]\n"
		"  -p  processes running at once (default 1)\n"
		"  -m  milliseconds each process's threads run (default 10)\n"
		"  -k  KiB each thread maps per cycle (default 16)\n"
		"  -n  nice level (default 19)\n"
		"  -d  stop after SECONDS (default: at SIGTERM or SIGINT)\n",
		argv0);
	exit(2);
}

static long number(const char *s, const char *argv0, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || v < lo || v > hi)
		usage(argv0);
	return v;
}

int main(int argc, char **argv)
{
	int procs = 1, nice_level = 19, running = 0, opt;
	long ncpus, seconds = 0;
	struct sigaction sa;
	double start;

	while ((opt = getopt(argc, argv, "p:m:k:n:d:")) != -1) {
		switch (opt) {
		case 'p': procs = number(optarg, argv[0], 1, 1024); break;
		case 'm': run_ms = number(optarg, argv[0], 1, 60000); break;
		case 'k': map_bytes = number(optarg, argv[0], 4, 1 << 20) * 1024; break;
		case 'n': nice_level = number(optarg, argv[0], -20, 19); break;
		case 'd': seconds = number(optarg, argv[0], 1, 1L << 30); break;
		default: usage(argv[0]);
		}
	}
	page_size = sysconf(_SC_PAGESIZE);
	ncpus = possible_cpus();
	if (ncpus < 1)
		ncpus = 1;
	if (ncpus > MAX_CPUS)
		ncpus = MAX_CPUS;
	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED) {
		perror("csdci-tlbload: mmap");
		return 1;
	}
	if (setpriority(PRIO_PROCESS, 0, nice_level) != 0)
		perror("csdci-tlbload: setpriority");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; // no SA_RESTART: waitpid returns on a signal
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (seconds > 0) {
		sigaction(SIGALRM, &sa, NULL);
		alarm(seconds);
	}
	printf("csdci: background load started: %d process(es) at a time, one thread on each of %ld CPUs, %d ms each, %zu KiB maps, nice %d\n",
	       procs, ncpus, run_ms, map_bytes / 1024, getpriority(PRIO_PROCESS, 0));
	fflush(stdout);
	start = now_s();
	while (!stop) {
		while (running < procs && !stop) {
			pid_t pid = fork();
			if (pid == 0)
				worker(ncpus);
			if (pid < 0) {
				usleep(10000); // out of memory or pids: try again
				break;
			}
			running++;
		}
		if (waitpid(-1, NULL, 0) > 0)
			running--;
	}
	while (running > 0) {
		if (waitpid(-1, NULL, 0) > 0)
			running--;
		else if (errno == ECHILD)
			break;
	}
	printf("csdci: background load done: %lu processes, %lu threads, %lu cycles in %.1f s\n",
	       shared->processes, shared->threads, shared->cycles, now_s() - start);
	fflush(stdout);
	return 0;
}
