/*
 * control_test: the control channel's request lines (outside input: any
 * local client of the socket) and one request answered over a real socket.
 */
#include <sys/wait.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "unit.h"

static int
parse(const char *line, enum control_cmd *cmd, char *arg, const char **why)
{
	return control_request_parse(line, strlen(line), cmd, arg,
	    CONTROL_REQUEST_MAX, why);
}

static void
test_parse(void)
{
	char arg[CONTROL_REQUEST_MAX];
	enum control_cmd cmd;
	const char *why = NULL;

	CHECK_INT(parse("reload", &cmd, arg, &why), 0);
	CHECK_INT(cmd, CONTROL_RELOAD);
	CHECK_STR(arg, "");
	CHECK_INT(parse("flush", &cmd, arg, &why), 0);
	CHECK_INT(cmd, CONTROL_FLUSH);
	CHECK_STR(arg, "");
	CHECK_INT(parse("flush  www.Example.com\r", &cmd, arg, &why), 0);
	CHECK_STR(arg, "www.Example.com");
	CHECK_INT(parse("stats", &cmd, arg, &why), 0);
	CHECK_INT(cmd, CONTROL_STATS);
	CHECK_INT(parse("upstreams", &cmd, arg, &why), 0);
	CHECK_INT(cmd, CONTROL_UPSTREAMS);
	CHECK_INT(parse("status", &cmd, arg, &why), 0);
	CHECK_INT(cmd, CONTROL_STATUS);

	CHECK_INT(parse("reload now", &cmd, arg, &why), -1);
	CHECK_STR(why, "this command takes no argument");
	CHECK_INT(parse("flush a b", &cmd, arg, &why), -1);
	CHECK_INT(parse("stop", &cmd, arg, &why), -1);
	CHECK(strstr(why, "unknown command") != NULL);
	CHECK_INT(parse("", &cmd, arg, &why), -1);
	CHECK_INT(parse("relo", &cmd, arg, &why), -1);
	CHECK_INT(parse("reloadx", &cmd, arg, &why), -1);
	CHECK_INT(control_request_parse("flush a\0b", 9, &cmd, arg,
	    sizeof(arg), &why), -1);
	CHECK_STR(why, "control characters in the request");
	/* An argument longer than the caller's buffer is refused. */
	CHECK_INT(control_request_parse("flush abcdef", 12, &cmd, arg, 6,
	    &why), -1);
	CHECK_INT(control_request_parse("flush abcde", 11, &cmd, arg, 6,
	    &why), 0);
}

static struct event_base *test_base;

static void
handler(void *arg, struct control_req *req, enum control_cmd cmd,
    const char *argument)
{
	char text[128];

	snprintf(text, sizeof(text), "cmd %d arg [%s]", (int)cmd, argument);
	control_reply(req, cmd != CONTROL_RELOAD, text);
	if (cmd == CONTROL_STATUS)
		event_base_loopexit(test_base,
		    &(struct timeval){ 0, 300000 });	/* after the write */
}

/* A child asks; the loop here answers; a second daemon is refused. */
static void
test_round_trip(void)
{
	char dir[] = "/tmp/control_test.XXXXXX", path[PATH_MAX], why[256];
	struct control *c, *c2;
	pid_t pid;
	int status;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/sub/ctl.sock", dir);
	test_base = event_base_new();
	c = control_listen(test_base, path, getgid(), handler, NULL);
	CHECK(c != NULL);
	if (c == NULL)
		return;
	c2 = control_listen(test_base, path, getgid(), handler, NULL);
	CHECK(c2 == NULL);	/* "is another dnswarden running?" */
	if ((pid = fork()) == 0) {
		bool ok = false;
		char *answer = NULL;
		int bad = 0;
		if (control_request(path, "flush example.com", 5000, &ok,
		    &answer, why, sizeof(why)) == -1 || !ok ||
		    strcmp(answer, "cmd 1 arg [example.com]\n") != 0)
			bad |= 1;
		free(answer);
		answer = NULL;
		if (control_request(path, "reload", 5000, &ok, &answer, why,
		    sizeof(why)) == -1 || ok)
			bad |= 2;
		free(answer);
		answer = NULL;
		if (control_request(path, "bogus", 5000, &ok, &answer, why,
		    sizeof(why)) == -1 || ok ||
		    strstr(answer, "unknown command") == NULL)
			bad |= 4;
		free(answer);
		answer = NULL;
		if (control_request(path, "status", 5000, &ok, &answer, why,
		    sizeof(why)) == -1 || !ok)
			bad |= 8;
		free(answer);
		answer = NULL;
		if (bad)
			fprintf(stderr, "child: %d %s\n", bad, why);
		_exit(bad);
	}
	event_base_dispatch(test_base);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status));
	CHECK_INT(WEXITSTATUS(status), 0);
	control_free(c);
	CHECK(access(path, F_OK) == -1);
	CHECK(control_request(path, "status", 1000, &(bool){ 0 },
	    &(char *){ NULL }, why, sizeof(why)) == -1);
	CHECK(strstr(why, "is dnswarden running?") != NULL);
	event_base_free(test_base);
	snprintf(path, sizeof(path), "%s/sub", dir);
	rmdir(path);
	rmdir(dir);
}

int
main(void)
{
	RUN(test_parse);
	RUN(test_round_trip);
	UNIT_DONE();
}
