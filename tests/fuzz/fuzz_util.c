/* fuzz_util: see fuzz_util.h. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_util.h"

static char dir[PATH_MAX];

void
fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", file, line, what);
	abort();
}

static const uint8_t *input;
static size_t input_len;

void
fuzz_input(const uint8_t *data, size_t size)
{
	input = data;
	input_len = size;
}

bool
fuzz_open_finding(const char *file, int line, const char *what,
    const char *name)
{
	static const char *seen[16];
	static size_t nseen;
	const char *strict = getenv("FUZZ_STRICT");

	if (strict != NULL && strcmp(strict, "1") == 0)
		fuzz_fail(file, line, what);
	for (size_t i = 0; i < nseen; i++)
		if (strcmp(seen[i], name) == 0)
			return false;
	if (nseen < sizeof(seen) / sizeof(seen[0]))
		seen[nseen++] = name;
	fprintf(stderr, "%s:%d: open finding %s (%s); tolerated, "
	    "FUZZ_STRICT=1 fails on it\n", file, line, name, what);
	if (input != NULL) {
		char path[128];
		snprintf(path, sizeof(path), "open-%s", name);
		fuzz_write_file(path, input, input_len);
	}
	return false;
}

/* Remove the files the targets wrote (one level: they make no subdirs). */
static void
fuzz_dir_remove(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[PATH_MAX + 256];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

const char *
fuzz_dir(void)
{
	const char *tmp = getenv("TMPDIR");

	if (dir[0] != '\0')
		return dir;
	/* The targets write a file per input: memory is much faster. */
	if (tmp == NULL || *tmp == '\0')
		tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(dir, sizeof(dir), "%s/dnswarden-fuzz.XXXXXX", tmp);
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		exit(2);
	}
	atexit(fuzz_dir_remove);
	return dir;
}

void
fuzz_path(char *out, size_t outlen, const char *name)
{
	snprintf(out, outlen, "%s/%s", fuzz_dir(), name);
}

void
fuzz_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	const char *p = data;

	if (fd == -1) {
		perror(path);
		exit(2);
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n <= 0) {
			perror(path);
			exit(2);
		}
		p += n;
		len -= (size_t)n;
	}
	close(fd);
}
