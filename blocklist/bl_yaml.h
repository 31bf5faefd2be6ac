/*
 * bl_yaml: reading a blocklist YAML file (categories with sites and
 * imports, allow entries). Private to the blocklist module.
 */
#ifndef DNSWARDEN_BL_YAML_H
#define DNSWARDEN_BL_YAML_H

#include "bl_loader.h"

/* Read the blocklist YAML file at path into l. Returns 0 or -1. */
int	bl_yaml_load(struct bl_loader *l, const char *path);

#endif
