/*
 * sqlite_fdvfs: SQLite reaching a database through a directory descriptor.
 * Private to attemptlog/.
 */
#ifndef DNSWARDEN_SQLITE_FDVFS_H
#define DNSWARDEN_SQLITE_FDVFS_H

/*
 * Make the default VFS one that leaves a path under /proc/self/fd/ as it
 * is, and hands everything else to SQLite's own. The unprivileged daemon
 * writes a database whose directory it owns but cannot reach by name (it
 * lies inside a directory only root may enter): serve opens the directory
 * before the drop and the writer names the file
 * /proc/self/fd/N/attempts.db. SQLite's own VFS would turn that symlink
 * back into the unreachable name; the kernel follows it to the directory
 * itself, and the -wal, -shm and -journal files sit beside it. Its WAL
 * files also write each frame's header and page in one call, not two
 * (sqlite_fdvfs.c). Idempotent.
 */
void	sqlite_fdvfs_register(void);

#endif
