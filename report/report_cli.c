/*
 * report_cli: the "report" and "log" commands, on the report library.
 * See report.h and, for what the numbers mean, docs/reports.md.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "report.h"

#define OPT_CONFIG	'c'
#define OPT_HELP	'h'
#define OPT_DATABASE	'D'
#define OPT_CENTRAL	'C'
#define OPT_VALUE	'v'	/* any option report_opts_set() takes */

static void
usage(FILE *out, bool log)
{
	if (log)
		fprintf(out, "usage: dnswarden log [-c FILE [--central] |"
		    " --database FILE] [--since DATE] [--until DATE]\n"
		    "                     [--client ADDR|NAME] [--site NAME]"
		    " [--category NAME] [--rule NAME]\n"
		    "                     [--instance NAME] [--limit N]"
		    " [--before [NAME:]ID] [--tz ZONE]\n"
		    "                     [--format table|csv|json]\n");
	else
		fprintf(out, "usage: dnswarden report [-c FILE [--central] |"
		    " --database FILE] [--since DATE] [--until DATE]\n"
		    "                        [--by day|week|month|client|"
		    "category|site|domain|policy|instance]\n"
		    "                        [--instance NAME] [--top N]"
		    " [--tz ZONE] [--format table|csv|json]\n");
	fprintf(out, "--central reads every instance's rows from"
	    " log.central.postgresql.\n");
	fprintf(out, "DATE: YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM],"
	    " in the zone of --tz unless it names one;\n"
	    "--until YYYY-MM-DD includes that whole day. ZONE: local"
	    " (default), UTC, +HH:MM or a name\nsuch as Europe/Berlin.\n");
}

struct cli {
	struct report_opts	 o;
	const char		*cmd;
	const char		*config;
	const char		*database;
	bool			 central;
};

/* --central and what goes with it: -1, or 2 after saying why not. */
static int
cli_check_central(const struct cli *c)
{
	const char *why = NULL;

	if (c->central && c->database != NULL)
		why = "--central reads the database of log.central.postgresql,"
		    " not --database";
	else if (!c->central && c->o.before_instance[0] != '\0')
		why = "--before NAME:ID is for --central (a local log's ids"
		    " are its own: --before ID)";
	else if (c->central && c->o.before > 0 &&
	    c->o.before_instance[0] == '\0' && c->o.instance[0] == '\0')
		why = "--before: ids are per instance in the central log: give"
		    " NAME:ID (the row's instance and id), or --instance NAME";
	if (why == NULL)
		return -1;
	fprintf(stderr, "dnswarden %s: %s\n", c->cmd, why);
	return 2;
}

/*
 * Parse argv into c. Returns -1 to go on, or the exit status: 0 after
 * --help, 2 on a usage error (said in one line).
 */
static int
cli_parse(int argc, char **argv, struct cli *c, bool log)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "database", required_argument, NULL, OPT_DATABASE },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "since", required_argument, NULL, OPT_VALUE },
		{ "until", required_argument, NULL, OPT_VALUE },
		{ "tz", required_argument, NULL, OPT_VALUE },
		{ "format", required_argument, NULL, OPT_VALUE },
		{ "by", required_argument, NULL, OPT_VALUE },
		{ "top", required_argument, NULL, OPT_VALUE },
		{ "client", required_argument, NULL, OPT_VALUE },
		{ "site", required_argument, NULL, OPT_VALUE },
		{ "category", required_argument, NULL, OPT_VALUE },
		{ "rule", required_argument, NULL, OPT_VALUE },
		{ "limit", required_argument, NULL, OPT_VALUE },
		{ "before", required_argument, NULL, OPT_VALUE },
		{ "instance", required_argument, NULL, OPT_VALUE },
		{ "central", no_argument, NULL, OPT_CENTRAL },
		{ NULL, 0, NULL, 0 },
	};
	char err[256];
	int ch, idx;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+c:h", longopts, &idx)) != -1) {
		switch (ch) {
		case OPT_HELP:
			usage(stdout, log);
			return 0;
		case OPT_CONFIG:
			c->config = optarg;
			continue;
		case OPT_DATABASE:
			c->database = optarg;
			continue;
		case OPT_CENTRAL:
			c->central = true;
			continue;
		case OPT_VALUE:
			if (report_opts_set(&c->o, longopts[idx].name, optarg,
			    err, sizeof(err)) == 0)
				continue;
			fprintf(stderr, "dnswarden %s: --%s\n", c->cmd, err);
			return 2;
		default:
			fprintf(stderr, "dnswarden %s: %s: unknown option or"
			    " missing value (see dnswarden help %s)\n", c->cmd,
			    argv[optind - 1], c->cmd);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "dnswarden %s: unexpected argument \"%s\"\n",
		    c->cmd, argv[optind]);
		return 2;
	}
	if (report_opts_finish(&c->o, err, sizeof(err)) == -1) {
		fprintf(stderr, "dnswarden %s: --%s\n", c->cmd, err);
		return 2;
	}
	return cli_check_central(c);
}

/*
 * The configuration, for log.database and the pseudonym key; NULL after
 * printing the diagnostics. A reader's configuration (log: and clients:
 * only, no upstreams, no key) is enough: HR need not see the daemon's.
 */
static struct config *
cli_config(const struct cli *c)
{
	struct config *cfg;
	struct diag d;

	diag_init(&d);
	cfg = config_load_reader(c->config, &d);
	if (cfg == NULL)
		fputs(diag_text(&d), stderr);
	diag_free(&d);
	if (cfg != NULL && c->central && cfg->log.central_conninfo == NULL) {
		fprintf(stderr, "dnswarden %s: %s: log.central.postgresql is not"
		    " set: --central reads the central database it names\n",
		    c->cmd, c->config);
		config_free(cfg);
		cfg = NULL;
	} else if (cfg != NULL && !c->central && cfg->log.database == NULL) {
		fprintf(stderr, "dnswarden %s: %s: log.database is not set:"
		    " nothing is logged\n", c->cmd, c->config);
		config_free(cfg);
		cfg = NULL;
	}
	return cfg;
}

/*
 * Open (path, the central database when --central, with the local
 * instance's name for a local log), run, write: the exit status.
 */
static int
cli_report(struct cli *c, const char *path, const char *instance,
    const char *pseudonym_key)
{
	struct report_rows *rows = NULL;
	struct report_db *db;
	char err[1024];
	int rc = 1;

	db = c->central ? report_db_open_central(path, err, sizeof(err)) :
	    report_db_open(path, err, sizeof(err));
	if (db != NULL && instance != NULL)
		report_db_set_instance(db, instance);
	if (db == NULL || report_run(db, &c->o, pseudonym_key, &rows, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "dnswarden %s: %s\n", c->cmd, err);
		goto out;
	}
	report_write_warnings(rows, c->cmd[0] == 'l' ? "dnswarden log" :
	    "dnswarden report", stderr);
	/* Which filter matched nothing: on stderr, the output stays data. */
	if (rows->empty[0] != '\0')
		fprintf(stderr, "dnswarden %s: %s\n", c->cmd, rows->empty);
	if (report_write(rows, c->o.format, stdout) == 0 &&
	    fflush(stdout) == 0)
		rc = 0;
	else
		fprintf(stderr, "dnswarden %s: cannot write the output\n",
		    c->cmd);
out:
	report_rows_free(rows);
	report_db_close(db);
	return rc;
}

static int
cli_run(int argc, char **argv, bool log)
{
	struct cli c = { .cmd = log ? "log" : "report",
	    .config = CONFIG_DEFAULT_PATH };
	struct config *cfg = NULL;
	const char *key = NULL;
	int rc;

	report_opts_init(&c.o, log ? REPORT_ATTEMPTS : REPORT_COUNTS);
	if ((rc = cli_parse(argc, argv, &c, log)) >= 0)
		return rc;
	if (c.database != NULL)
		return cli_report(&c, c.database, NULL, NULL);
	if ((cfg = cli_config(&c)) == NULL)
		return 1;
	if (cfg->log.client_identity == CLIENT_IDENTITY_PSEUDONYM)
		key = cfg->log.pseudonym_key;
	if (cfg->log.client_identity == CLIENT_IDENTITY_PSEUDONYM &&
	    key == NULL && c.o.client[0] != '\0')
		fprintf(stderr, "dnswarden %s: note: without the pseudonym key"
		    " --client matches pseudonyms and names, not addresses\n",
		    c.cmd);
	rc = cli_report(&c, c.central ? cfg->log.central_conninfo :
	    cfg->log.database, cfg->log.central_instance, key);
	config_free(cfg);
	return rc;
}

int
report_cmd(int argc, char **argv)
{
	return cli_run(argc, argv, false);
}

int
log_cmd(int argc, char **argv)
{
	return cli_run(argc, argv, true);
}
