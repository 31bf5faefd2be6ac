/*
 * thread: CPU affinity and priority of the daemon's own threads.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/resource.h>

#include "thread.h"

static pthread_once_t	 start_once = PTHREAD_ONCE_INIT;
/* Written once, under start_once; read-only afterwards. */
static cpu_set_t	 start_set;

static void
thread_start_set_read(void)
{
	if (sched_getaffinity(0, sizeof(start_set), &start_set) == -1) {
		/* Unknown: let the kernel refuse at run time. */
		CPU_ZERO(&start_set);
		for (int i = 0; i < CPU_SETSIZE; i++)
			CPU_SET(i, &start_set);
	}
}

bool
thread_cpu_allowed(unsigned cpu)
{
	pthread_once(&start_once, thread_start_set_read);
	return cpu < CPU_SETSIZE && CPU_ISSET(cpu, &start_set);
}

char *
thread_cpus_allowed_text(char *buf, size_t len)
{
	size_t	n = 0;
	int	first = -1;

	pthread_once(&start_once, thread_start_set_read);
	buf[0] = '\0';
	for (int i = 0; i <= CPU_SETSIZE && n < len; i++) {
		bool in = i < CPU_SETSIZE && CPU_ISSET(i, &start_set);

		if (in && first < 0)
			first = i;
		if (in || first < 0)
			continue;
		if (first == i - 1)
			n += (size_t)snprintf(buf + n, len - n, "%s%d",
			    n ? "," : "", first);
		else
			n += (size_t)snprintf(buf + n, len - n, "%s%d-%d",
			    n ? "," : "", first, i - 1);
		first = -1;
	}
	return buf;
}

size_t
thread_cpus_rest(const unsigned *taken, size_t n, unsigned *out, size_t max)
{
	cpu_set_t	rest;
	size_t		k = 0;

	pthread_once(&start_once, thread_start_set_read);
	rest = start_set;
	for (size_t i = 0; i < n; i++)
		if (taken[i] < CPU_SETSIZE)
			CPU_CLR(taken[i], &rest);
	for (unsigned cpu = 0; cpu < CPU_SETSIZE && k < max; cpu++)
		if (CPU_ISSET(cpu, &rest))
			out[k++] = cpu;
	return k;
}

int
thread_pin(pthread_t t, const unsigned *cpus, size_t n)
{
	cpu_set_t	set;

	if (n == 0)
		return 0;
	CPU_ZERO(&set);
	for (size_t i = 0; i < n; i++) {
		if (cpus[i] >= CPU_SETSIZE)
			return EINVAL;
		CPU_SET(cpus[i], &set);
	}
	return pthread_setaffinity_np(t, sizeof(set), &set);
}

int
thread_renice_self(int nice)
{
	int	now;

	/* Linux takes a thread ID here and changes that thread alone. */
	errno = 0;
	now = getpriority(PRIO_PROCESS, (id_t)gettid());
	if (errno != 0)
		return -1;
	return setpriority(PRIO_PROCESS, (id_t)gettid(),
	    now + nice > 19 ? 19 : now + nice);
}
