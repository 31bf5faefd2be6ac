/* sqlite_fdvfs: see sqlite_fdvfs.h. */
#include <sqlite3.h>
#include <string.h>

#include "sqlite_fdvfs.h"

#define FDVFS_PREFIX	"/proc/self/fd/"

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

void
sqlite_fdvfs_register(void)
{
	if (fdvfs_base != NULL || (fdvfs_base = sqlite3_vfs_find(NULL)) == NULL)
		return;
	fdvfs = *fdvfs_base;
	fdvfs.zName = "dnswarden-fd";
	fdvfs.pNext = NULL;
	fdvfs.xFullPathname = fdvfs_full_pathname;
	if (sqlite3_vfs_register(&fdvfs, 1) != SQLITE_OK)
		fdvfs_base = NULL;
}
