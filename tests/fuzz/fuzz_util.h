/*
 * fuzz_util: what the libFuzzer targets share: a failed invariant that
 * libFuzzer records as a crash, and a private directory for the targets
 * whose code under test reads files.
 */
#ifndef DNSWARDEN_FUZZ_UTIL_H
#define DNSWARDEN_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The entry points libFuzzer calls; declared for -Wmissing-prototypes. */
int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Check an invariant of the code under test. On failure print where and
 * what, and abort(): libFuzzer saves the input as crash-<sha1>.
 */
#define FUZZ_CHECK(cond) do {						\
	if (!(cond))							\
		fuzz_fail(__FILE__, __LINE__, #cond);			\
} while (0)

void	fuzz_fail(const char *file, int line, const char *what)
	    __attribute__((noreturn));

/*
 * A check that a finding reported but not fixed yet breaks (the findings
 * table in docs/fuzzing.md names them). True when cond holds. When it
 * does not: with FUZZ_STRICT=1 in the environment it fails like
 * FUZZ_CHECK; otherwise it notes the finding once on stderr (and saves
 * the input, see fuzz_input()) and is false,
 * and the caller stops checking this input. Short runs thus keep looking
 * for new findings instead of stopping at a known one. Memory errors are
 * never tolerated: the sanitizers abort on them first.
 */
#define FUZZ_OPEN(cond, name)						\
	((cond) || fuzz_open_finding(__FILE__, __LINE__, #cond, name))

bool	fuzz_open_finding(const char *file, int line, const char *what,
	    const char *name);

/*
 * Tell fuzz_open_finding() the input being run, so that the first input
 * showing each open finding is written to ./open-NAME for a look.
 */
void	fuzz_input(const uint8_t *data, size_t size);

/*
 * A directory of our own (mkdtemp under $TMPDIR, else /dev/shm, else
 * /tmp), created on the first call and removed with its files at exit.
 * Never NULL: failing to create it is fatal.
 */
const char *fuzz_dir(void);

/* Write the path fuzz_dir()/name into out. */
void	fuzz_path(char *out, size_t outlen, const char *name);

/* Write data to path (created or truncated). Fatal on error. */
void	fuzz_write_file(const char *path, const void *data, size_t len);

#endif
