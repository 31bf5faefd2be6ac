/*
 * privdrop: giving up root once the sockets are bound.
 */
#ifndef DNSWARDEN_PRIVDROP_H
#define DNSWARDEN_PRIVDROP_H

#include <stdbool.h>

/*
 * When running as root: look up user (falling back to "nobody" when it
 * does not exist), make the directory of dbpath (if not NULL) exist and
 * belong to that user, then switch to its uid and gid for good. Does
 * nothing when not root. Returns 0, or -1 after logging why.
 */
int	privdrop_to_user(const char *user, const char *dbpath);

#endif
