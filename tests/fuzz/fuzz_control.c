/*
 * fuzz_control: one request line of the control channel
 * (control_request_parse()), as any local client of the socket may send.
 *
 * Beyond not crashing: a request is taken only when it is a known command,
 * its argument is NUL-terminated, shorter than the buffer, free of spaces
 * and control characters, and only "flush" has one.
 */
#include <string.h>

#include "control.h"
#include "fuzz_util.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char arg[64];
	enum control_cmd cmd;
	const char *why = NULL;

	memset(arg, 0x55, sizeof(arg));
	if (control_request_parse((const char *)data, size, &cmd, arg,
	    sizeof(arg), &why) == -1) {
		FUZZ_CHECK(why != NULL && why[0] != '\0');
		return 0;
	}
	size_t n = strnlen(arg, sizeof(arg));
	FUZZ_CHECK(n < sizeof(arg));
	FUZZ_CHECK(strchr(arg, ' ') == NULL);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)arg[i] >= 0x20 && arg[i] != 0x7f);
	FUZZ_CHECK(n == 0 || cmd == CONTROL_FLUSH);
	FUZZ_CHECK(cmd >= CONTROL_RELOAD && cmd <= CONTROL_STATUS);
	return 0;
}
