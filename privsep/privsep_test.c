/*
 * privsep_test: the helper hands out the files the configuration names,
 * as descriptors, only during a reload, and nothing else.
 */
#include <sys/stat.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blocklist.h"
#include "config.h"
#include "diag.h"
#include "fileopen.h"
#include "privsep.h"
#include "unit.h"

static char dir[64];

static void
write_file(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

/* The config and its blocklist load through the helper. */
static void
test_reload_loads_named_files(void)
{
	struct privsep *ps = privsep_start("dnswarden.yaml", getuid(),
	    getgid());
	char err[256], path[256];
	struct diag d;

	CHECK(ps != NULL);
	privsep_install(ps);
	/* Outside a reload, nothing opens. */
	CHECK(fileopen_read("dnswarden.yaml") == NULL && errno == EPERM);
	CHECK_INT(privsep_reload_begin(ps, err, sizeof(err)), 0);
	diag_init(&d);
	struct config *cfg = config_load("dnswarden.yaml", &d);
	struct blocklist *bl = cfg ? blocklist_load(cfg, &d) : NULL;
	CHECK_STR(diag_text(&d), "");
	CHECK(bl != NULL && blocklist_size(bl) > 0);
	/* Only the spelling the loaders used: another one could be a
	 * symlink the daemon planted. */
	snprintf(path, sizeof(path), "%s/./list.yaml", dir);
	CHECK(fileopen_read(path) == NULL && errno == EPERM);
	FILE *f = fileopen_read("dnswarden.yaml");
	CHECK(f != NULL);
	if (f)
		fclose(f);
	/* A file in the same directory that the configuration does not
	 * name is refused, and so is a directory or a system file. */
	CHECK(fileopen_read("secret.txt") == NULL && errno == EPERM);
	CHECK(fileopen_read("/etc/passwd") == NULL && errno == EPERM);
	CHECK(fileopen_read(".") == NULL && errno == EPERM);
	privsep_reload_end(ps);
	CHECK(fileopen_read("list.yaml") == NULL && errno == EPERM);
	blocklist_free(bl);
	config_free(cfg);
	diag_free(&d);
	privsep_stop(ps);
	fileopen_set_opener(NULL, NULL);
}

/* A named file that is missing gives the daemon the real reason. */
static void
test_missing_named_file(void)
{
	struct privsep *ps = privsep_start("missing.yaml", getuid(),
	    getgid());
	char err[256];
	struct diag d;

	privsep_install(ps);
	CHECK_INT(privsep_reload_begin(ps, err, sizeof(err)), 0);
	diag_init(&d);
	CHECK(config_load("missing.yaml", &d) == NULL);
	CHECK(strstr(diag_text(&d), "No such file or directory") != NULL);
	diag_free(&d);
	privsep_reload_end(ps);
	privsep_stop(ps);
	fileopen_set_opener(NULL, NULL);
}

/*
 * A named file the service user can read is opened through symlinks; one
 * it cannot read only without any: the daemon could have planted the
 * symlink in a directory it can write, pointing at a file it may not read.
 */
static void
test_symlink_to_unreadable_refused(void)
{
	struct privsep *ps;
	char err[256];
	struct diag d;

	if (geteuid() != 0) {
		SKIP("needs root: the helper's capability");
		return;
	}
	write_file("via-link.yaml", "blocklist:\n  files: [ln.yaml]\n"
	    "upstreams: [\"127.0.0.2:5300\"]\n");
	symlink("list.yaml", "ln.yaml");
	for (int readable = 1; readable >= 0; readable--) {
		chmod("list.yaml", readable ? 0644 : 0);
		ps = privsep_start("via-link.yaml", 0, 0);
		privsep_install(ps);
		CHECK_INT(privsep_reload_begin(ps, err, sizeof(err)), 0);
		diag_init(&d);
		struct config *cfg = config_load("via-link.yaml", &d);
		struct blocklist *bl = cfg ? blocklist_load(cfg, &d) : NULL;
		CHECK(readable ? bl != NULL : bl == NULL);
		if (!readable)
			CHECK(strstr(diag_text(&d), "ln.yaml: cannot open: Too"
			    " many levels of symbolic links") != NULL);
		blocklist_free(bl);
		config_free(cfg);
		diag_free(&d);
		privsep_reload_end(ps);
		privsep_stop(ps);
		fileopen_set_opener(NULL, NULL);
	}
	chmod("list.yaml", 0644);
	unlink("ln.yaml");
	unlink("via-link.yaml");
}

/* A directory where a file belongs is refused by name, not read. */
static void
test_directory_refused(void)
{
	CHECK(fileopen_read(".") == NULL && errno == EISDIR);
	CHECK(fileopen_fd("list.yaml") >= 0);
}

int
main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/dw-privsep-test.XXXXXX");
	if (mkdtemp(dir) == NULL || chdir(dir) == -1)
		return 1;
	write_file("dnswarden.yaml", "blocklist:\n  files: [list.yaml]\n"
	    "upstreams: [\"127.0.0.2:5300\"]\nlog:\n  database: db/a.db\n");
	write_file("list.yaml", "categories:\n  - name: c\n    sites:\n"
	    "      - name: S\n        domains: [blocked.example]\n");
	write_file("secret.txt", "not for the daemon\n");
	RUN(test_reload_loads_named_files);
	RUN(test_missing_named_file);
	RUN(test_directory_refused);
	RUN(test_symlink_to_unreadable_refused);
	unlink("dnswarden.yaml");
	unlink("list.yaml");
	unlink("secret.txt");
	rmdir(dir);
	UNIT_DONE();
}
