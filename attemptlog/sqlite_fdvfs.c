/* sqlite_fdvfs: see sqlite_fdvfs.h. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_fdvfs.h"

#define FDVFS_PREFIX	"/proc/self/fd/"

/*
 * SQLite appends a WAL frame as two writes: its 24-byte header, then the
 * page right after it. A WAL file of this VFS holds the header back and
 * writes both with the page, in one system call instead of two (on this
 * project's VMs a pwrite() costs more than copying a page). Anything else
 * done to the file first writes a header it holds, as it is: the file
 * only ever sees the same bytes at the same offsets, in the same order
 * for every reader, since the header is held only between those two
 * calls of SQLite's, before it publishes the frame in the wal-index.
 */
#define WAL_FRAME_HDR	24

struct wal_file {
	sqlite3_file	 base;		/* its methods: wal_io */
	sqlite3_file	*real;		/* SQLite's own, after this struct */
	sqlite3_int64	 held_at;	/* offset of held[]; -1: none */
	unsigned char	 held[WAL_FRAME_HDR];
	unsigned char	*frame;		/* header and page, for one write */
	size_t		 frame_cap;
};

/*
 * Write the header held back, alone; SQLITE_OK if there is none. One that
 * fails stays held, so that the next call on the file fails too: SQLite
 * ignores what some of them return (file-control hints).
 */
static int
wal_flush(struct wal_file *w)
{
	int rc;

	if (w->held_at < 0)
		return SQLITE_OK;
	rc = w->real->pMethods->xWrite(w->real, w->held, WAL_FRAME_HDR,
	    w->held_at);
	if (rc == SQLITE_OK)
		w->held_at = -1;
	return rc;
}

static int
wal_write(sqlite3_file *f, const void *data, int amt, sqlite3_int64 at)
{
	struct wal_file *w = (struct wal_file *)f;
	size_t need = WAL_FRAME_HDR + (size_t)amt;
	int rc;

	if (w->held_at >= 0 && at == w->held_at + WAL_FRAME_HDR && amt > 0) {
		if (need > w->frame_cap) {
			unsigned char *n = realloc(w->frame, need);

			if (n != NULL) {
				w->frame = n;
				w->frame_cap = need;
			}
		}
		if (need <= w->frame_cap) {
			memcpy(w->frame, w->held, WAL_FRAME_HDR);
			memcpy(w->frame + WAL_FRAME_HDR, data, (size_t)amt);
			at = w->held_at;
			w->held_at = -1;
			return w->real->pMethods->xWrite(w->real, w->frame,
			    (int)need, at);
		}
	}
	if ((rc = wal_flush(w)) != SQLITE_OK)
		return rc;
	if (amt == WAL_FRAME_HDR) {
		memcpy(w->held, data, WAL_FRAME_HDR);
		w->held_at = at;
		return SQLITE_OK;
	}
	return w->real->pMethods->xWrite(w->real, data, amt, at);
}

static int
wal_close(sqlite3_file *f)
{
	struct wal_file *w = (struct wal_file *)f;
	int rc = wal_flush(w), rc2;

	rc2 = w->real->pMethods->xClose(w->real);
	free(w->frame);
	w->frame = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

/* The other methods write what is held, then do what SQLite's would. */
#define WAL_REAL(f)	(((struct wal_file *)(f))->real)
#define WAL_FLUSHED(f, call) do {					\
	int rc_ = wal_flush((struct wal_file *)(f));			\
									\
	if (rc_ != SQLITE_OK)						\
		return rc_;						\
	return WAL_REAL(f)->pMethods->call;				\
} while (0)

static int
wal_read(sqlite3_file *f, void *out, int amt, sqlite3_int64 at)
{
	WAL_FLUSHED(f, xRead(WAL_REAL(f), out, amt, at));
}

static int
wal_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	WAL_FLUSHED(f, xTruncate(WAL_REAL(f), size));
}

static int
wal_sync(sqlite3_file *f, int flags)
{
	WAL_FLUSHED(f, xSync(WAL_REAL(f), flags));
}

static int
wal_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	WAL_FLUSHED(f, xFileSize(WAL_REAL(f), size));
}

static int
wal_lock(sqlite3_file *f, int level)
{
	WAL_FLUSHED(f, xLock(WAL_REAL(f), level));
}

static int
wal_unlock(sqlite3_file *f, int level)
{
	WAL_FLUSHED(f, xUnlock(WAL_REAL(f), level));
}

static int
wal_check_lock(sqlite3_file *f, int *out)
{
	return WAL_REAL(f)->pMethods->xCheckReservedLock(WAL_REAL(f), out);
}

static int
wal_file_control(sqlite3_file *f, int op, void *arg)
{
	WAL_FLUSHED(f, xFileControl(WAL_REAL(f), op, arg));
}

static int
wal_sector_size(sqlite3_file *f)
{
	return WAL_REAL(f)->pMethods->xSectorSize(WAL_REAL(f));
}

static int
wal_device(sqlite3_file *f)
{
	return WAL_REAL(f)->pMethods->xDeviceCharacteristics(WAL_REAL(f));
}

/* Version 1: SQLite maps no WAL file into memory and keeps no shm on it. */
static const sqlite3_io_methods wal_io = {
	.iVersion = 1,
	.xClose = wal_close,
	.xRead = wal_read,
	.xWrite = wal_write,
	.xTruncate = wal_truncate,
	.xSync = wal_sync,
	.xFileSize = wal_file_size,
	.xLock = wal_lock,
	.xUnlock = wal_unlock,
	.xCheckReservedLock = wal_check_lock,
	.xFileControl = wal_file_control,
	.xSectorSize = wal_sector_size,
	.xDeviceCharacteristics = wal_device,
};

/* Filled once by sqlite_fdvfs_register(), before the writer starts. */
static sqlite3_vfs	 fdvfs;
static sqlite3_vfs	*fdvfs_base;

static int
fdvfs_full_pathname(sqlite3_vfs *vfs, const char *path, int nout, char *out)
{
	if (strncmp(path, FDVFS_PREFIX, strlen(FDVFS_PREFIX)) != 0)
		return fdvfs_base->xFullPathname(fdvfs_base, path, nout, out);
	if ((int)strlen(path) >= nout)
		return SQLITE_CANTOPEN;
	memcpy(out, path, strlen(path) + 1);
	return SQLITE_OK;
}

/* WAL files get wal_io around SQLite's own file; the rest are its own. */
static int
fdvfs_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f,
    int flags, int *out_flags)
{
	struct wal_file *w = (struct wal_file *)f;
	int rc;

	if (!(flags & SQLITE_OPEN_WAL))
		return fdvfs_base->xOpen(fdvfs_base, name, f, flags, out_flags);
	memset(w, 0, sizeof(*w));
	w->real = (sqlite3_file *)(w + 1);
	w->held_at = -1;
	rc = fdvfs_base->xOpen(fdvfs_base, name, w->real, flags, out_flags);
	/* On failure SQLite calls xClose only if pMethods is set. */
	w->base.pMethods = w->real->pMethods != NULL ? &wal_io : NULL;
	return rc;
}

void
sqlite_fdvfs_register(void)
{
	if (fdvfs_base != NULL || (fdvfs_base = sqlite3_vfs_find(NULL)) == NULL)
		return;
	fdvfs = *fdvfs_base;
	fdvfs.zName = "dnswarden-fd";
	fdvfs.pNext = NULL;
	fdvfs.xFullPathname = fdvfs_full_pathname;
	fdvfs.szOsFile = (int)sizeof(struct wal_file) + fdvfs_base->szOsFile;
	fdvfs.xOpen = fdvfs_open;
	if (sqlite3_vfs_register(&fdvfs, 1) != SQLITE_OK)
		fdvfs_base = NULL;
}
