/*
 * fuzz_blocklist: a blocklist file. The input is written to a YAML file
 * and loaded with blocklist_load_file(); whatever follows a line
 * "#%list" becomes "list.txt" beside it, which the YAML may import in
 * any format (hosts, domains, adblock, dnsmasq, rpz). When it loads, names are matched: a fixed set
 * and the words of the input, each as text (blocklist_match_name()) and in
 * wire format (blocklist_match_wire()), and both must agree.
 *
 * Imports may name any path. Linked with -Wl,--wrap=fopen, so that a
 * device, a FIFO or a huge file named by the input is refused instead of
 * hanging the run.
 */
#include <sys/stat.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "blocklist.h"
#include "fuzz_util.h"

#define LIST_MARK	"\n#%list\n"
#define MAX_WORDS	16

FILE	*__real_fopen(const char *path, const char *mode);
FILE	*__wrap_fopen(const char *path, const char *mode);

static char	 yaml_path[4096];
static char	 list_path[4096];
static FILE	*devnull;

/* Files a blocklist may read: regular ones, and not big. */
FILE *
__wrap_fopen(const char *path, const char *mode)
{
	struct stat st;

	if (mode[0] == 'r' && strchr(mode, '+') == NULL &&
	    (stat(path, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > 1 << 20 || strncmp(path, "/proc/", 6) == 0 ||
	    strncmp(path, "/sys/", 5) == 0)) {
		errno = ENOENT;
		return NULL;
	}
	return __real_fopen(path, mode);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_path(yaml_path, sizeof(yaml_path), "blocklist.yaml");
	fuzz_path(list_path, sizeof(list_path), "list.txt");
	devnull = __real_fopen("/dev/null", "w");
	if (devnull == NULL)
		exit(2);
	return 0;
}

static void
check_match(const struct blocklist_match *m, int rc)
{
	FUZZ_CHECK(rc == 0 || rc == 1);
	if (rc == 1) {
		FUZZ_CHECK(!m->allowed);
		FUZZ_CHECK(m->rule != NULL && m->category != NULL);
		FUZZ_CHECK(m->file != NULL);
	} else if (m->allowed) {
		FUZZ_CHECK(m->rule != NULL && m->category == NULL);
	}
	if (m->rule != NULL)
		FUZZ_CHECK(strlen(m->rule) <= 253);
}

/* One name as text and as wire; the answers must be the same. */
static void
match_one(const struct blocklist *bl, const char *name)
{
	struct blocklist_match mt, mw;
	ldns_rdf *dn = NULL;

	int rt = blocklist_match_name(bl, name, &mt);
	if (rt == -1)
		return;
	check_match(&mt, rt);
	if (ldns_str2rdf_dname(&dn, name) != LDNS_STATUS_OK)
		return;
	ldns_dname2canonical(dn);
	int rw = blocklist_match_wire(bl, ldns_rdf_data(dn),
	    ldns_rdf_size(dn), &mw);
	check_match(&mw, rw);
	FUZZ_CHECK(rw == rt);
	FUZZ_CHECK(mw.allowed == mt.allowed);
	FUZZ_CHECK(mw.rule == mt.rule);
	ldns_rdf_deep_free(dn);
}

static bool
is_name_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

/* Fixed names, then the input's words: its own entries, mostly. */
static void
match_names(const struct blocklist *bl, const uint8_t *data, size_t size)
{
	static const char *const fixed[] = {
		"example.com", "www.example.com", "a.b.c.example.org.",
		"localhost", "com", ".", "xn--bcher-kva.example",
		"use-application-dns.net", "mask.icloud.com",
	};
	char word[256];
	size_t nwords = 0;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		match_one(bl, fixed[i]);
	for (size_t i = 0; i < size && nwords < MAX_WORDS; ) {
		size_t n = 0;
		while (i < size && !is_name_char(data[i]))
			i++;
		while (i < size && is_name_char(data[i]) && n < sizeof(word) - 1)
			word[n++] = (char)data[i++];
		while (i < size && is_name_char(data[i]))
			i++;
		if (n == 0)
			continue;
		word[n] = '\0';
		match_one(bl, word);
		nwords++;
	}
}

/*
 * Every message is one line starting with a file name that was read. Text
 * quoted from the lists (downloaded public lists, for imports) must not
 * bring control characters: a newline that starts a fake message, or
 * terminal escapes.
 */
static void
check_messages(const struct diag *d)
{
	const char *line = diag_text(d);

	FUZZ_CHECK(line != NULL);
	for (const char *p = line; *p != '\0'; p++)
		if (!FUZZ_OPEN(*p == '\n' || *p == '\t' ||
		    (unsigned char)*p >= 0x20, "diag-control-chars"))
			return;
	while (*line != '\0') {
		/* A newline quoted from a file starts a line of its own. */
		if (!FUZZ_OPEN(line[0] == '/', "diag-control-chars"))
			return;
		const char *nl = strchr(line, '\n');
		FUZZ_CHECK(nl != NULL);
		line = nl + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *mark;
	size_t yaml_len;
	struct diag d;

	if (size > 64 * 1024)
		return -1;	/* hand-written files; imports are lines */
	fuzz_input(data, size);
	mark = memmem(data, size, LIST_MARK, strlen(LIST_MARK));
	yaml_len = mark ? (size_t)(mark - data) : size;
	fuzz_write_file(yaml_path, data, yaml_len);
	if (mark != NULL) {
		const uint8_t *l = mark + strlen(LIST_MARK);
		fuzz_write_file(list_path, l, size - (size_t)(l - data));
	} else
		fuzz_write_file(list_path, "0.0.0.0 hosts.example\n", 22);

	diag_init(&d);
	struct blocklist *bl = blocklist_load_file(yaml_path, &d);
	FUZZ_CHECK((bl == NULL) == (d.errors > 0));
	check_messages(&d);
	if (bl != NULL) {
		(void)blocklist_size(bl);
		blocklist_print_summary(bl, devnull);
		match_names(bl, data, size);
	}
	blocklist_free(bl);
	diag_free(&d);
	return 0;
}
