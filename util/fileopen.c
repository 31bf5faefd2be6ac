/* fileopen: see fileopen.h. */
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "fileopen.h"

/* Set once at start-up (fileopen_set_opener), read by the loaders. */
static fileopen_fn	 opener = fileopen_direct;
static void		*opener_ctx;

void
fileopen_set_opener(fileopen_fn fn, void *ctx)
{
	opener = fn != NULL ? fn : fileopen_direct;
	opener_ctx = ctx;
}

int
fileopen_regular(int fd)
{
	struct stat st;
	int flags, saved;

	if (fd == -1)
		return -1;
	if (fstat(fd, &st) == -1)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		goto fail;
	}
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int
fileopen_direct(const char *path, void *ctx)
{
	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	return fileopen_regular(open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK));
}

int
fileopen_fd(const char *path)
{
	return opener(path, opener_ctx);
}

FILE *
fileopen_read(const char *path)
{
	int fd = fileopen_fd(path);
	FILE *f;

	if (fd == -1)
		return NULL;
	if ((f = fdopen(fd, "r")) == NULL) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return f;
}
