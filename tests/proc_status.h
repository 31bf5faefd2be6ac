/*
 * proc_status.h: one figure of /proc/self/status, for the tests and the
 * benchmarks that measure their own memory.
 */
#ifndef DNSWARDEN_PROC_STATUS_H
#define DNSWARDEN_PROC_STATUS_H

#include <stdio.h>
#include <string.h>

/*
 * The value of the line "KEY: N kB" (RssAnon: the heap and anonymous
 * mappings, no files; VmHWM: the peak resident size), in kB; -1 if the
 * file or the line is missing.
 */
static inline long
proc_status_kb(const char *key)
{
	char line[256];
	long kb = -1;
	size_t n = strlen(key);
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, n) == 0 && line[n] == ':' &&
		    sscanf(line + n + 1, "%ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

#endif
