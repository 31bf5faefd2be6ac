/*
 * fileopen: how every loader opens the files the configuration names
 * (dnswarden.yaml, blocklists, imported lists, resolv.conf). By default a
 * plain open(2). A daemon that has given up the right to read them installs
 * an opener that asks a privileged helper instead (privsep/); the loaders
 * do not know the difference.
 */
#ifndef DNSWARDEN_FILEOPEN_H
#define DNSWARDEN_FILEOPEN_H

#include <stdio.h>

/*
 * Opens path for reading; returns a descriptor, or -1 with errno set.
 * ctx is the pointer given to fileopen_set_opener().
 */
typedef int (*fileopen_fn)(const char *path, void *ctx);

/*
 * Open path read-only for a loader: a regular file only (EISDIR for a
 * directory, EINVAL for a FIFO, socket or device: they could block or
 * never end). Returns a stream to fclose(), or NULL with errno set.
 */
FILE	*fileopen_read(const char *path);

/*
 * The descriptor fileopen_read() would use, or -1 with errno set. The
 * caller closes it.
 */
int	 fileopen_fd(const char *path);

/*
 * Route every later fileopen_read()/fileopen_fd() through fn (NULL: back
 * to open(2)). Set once, before the threads that load files start; the
 * loaders run in one thread at a time.
 */
void	 fileopen_set_opener(fileopen_fn fn, void *ctx);

/* open(2) with the flags and the file-type check fileopen_read() uses. */
int	 fileopen_direct(const char *path, void *ctx);

/*
 * The file-type check of fileopen_direct() on fd, opened O_NONBLOCK: fd
 * made blocking, or -1 with errno set (EISDIR, EINVAL) and fd closed.
 * -1 in gives -1 out.
 */
int	 fileopen_regular(int fd);

#endif
