/*
 * report: the "report" and "log" commands, which read the attempt log for
 * HR and security (see docs/reports.md). They open the database read-only
 * and work while the server is writing it.
 */
#ifndef DNSWARDEN_REPORT_H
#define DNSWARDEN_REPORT_H

/*
 * dnswarden report [-c FILE] [--since DATE] [--until DATE] [--by KEY]
 * [--top N] [--format table|csv|json]: queries and attempts per group.
 * argv[0] is "report". Writes to stdout, messages to stderr. Returns the
 * exit status: 0 ok, 1 bad configuration, input or database, 2 usage.
 */
int	report_cmd(int argc, char **argv);

/*
 * dnswarden log [-c FILE] [--since DATE] [--until DATE] [--client
 * ADDR|NAME] [--site NAME] [--limit N] [--format table|csv|json]: the
 * individual attempts, newest first. argv[0] is "log". Same exit status
 * as report_cmd().
 */
int	log_cmd(int argc, char **argv);

#endif
