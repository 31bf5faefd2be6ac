/*
 * thread: where and how urgently dnswarden's threads run. server.cpus
 * pins the DNS loops, http.cpus the console's threads; the attempt
 * writer and the console yield to the loops with a higher nice value.
 * Linux only (sched_setaffinity and setpriority take a thread ID there).
 * None of this needs privilege for the daemon's own threads.
 */
#ifndef DNSWARDEN_THREAD_H
#define DNSWARDEN_THREAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * True if cpu is one the process could run on when it first asked (its
 * affinity then: taskset, systemd's CPUAffinity=, the cgroup's cpuset).
 * The set is read once, at the first call, so that a reload checks a
 * configuration against the same set after the threads were pinned.
 */
bool	thread_cpu_allowed(unsigned cpu);

/*
 * The CPUs thread_cpu_allowed() accepts, as "0-3,6" in buf (len bytes),
 * for messages. Returns buf.
 */
char	*thread_cpus_allowed_text(char *buf, size_t len);

/*
 * The CPUs thread_cpu_allowed() accepts that are not among the n of
 * taken, ascending, into out (room for max). Returns how many: 0 if
 * taken leaves none.
 */
size_t	thread_cpus_rest(const unsigned *taken, size_t n, unsigned *out,
	    size_t max);

/*
 * Run thread t on the n CPUs of cpus only; n 0 changes nothing. Threads
 * it creates later inherit the set. Returns 0, or an errno value.
 */
int	thread_pin(pthread_t t, const unsigned *cpus, size_t n);

/*
 * Lower the calling thread's priority by nice steps below what it has
 * (capped at nice 19). Failure (a sandbox that forbids it) only costs the
 * loops latency, so it is not reported. Returns 0 or -1.
 */
int	thread_renice_self(int nice);

#endif
