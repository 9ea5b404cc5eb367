/* Command line: run the gateway, check a configuration (-t) like nginx -t,
 * print the effective one (-T) or what the binary is made of (-V). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_info.h"
#include "chain.h"
#include "config.h"
#include "ev_alloc.h"
#include "log.h"
#include "log_conf.h"
#include "reload_signal.h"
#include "server.h"
#include "tg_build_config.h"

#define DEFAULT_CONFIG "/etc/tollgate/tollgate.yaml"
/* systemd's default TimeoutSec: a reload that takes longer is stuck. */
#define RELOAD_TIMEOUT_MS 90000

static void usage(FILE *out)
{
    fprintf(out, "Usage: tollgate [-c FILE] [-t | -T | -s reload [-p PID]] [-l LEVEL]\n"
                 "\n"
                 "An HTTP/1.1 API gateway.\n"
                 "\n"
                 "  -c, --config FILE   configuration file (default " DEFAULT_CONFIG ")\n"
                 "  -t, --test          check the configuration and exit: 0 if valid, otherwise\n"
                 "                      every FILE:LINE:COL: message on stderr and exit 1\n"
                 "  -T, --dump          check the configuration, print the effective one\n"
                 "                      (includes merged, defaults filled, secrets masked), exit\n"
                 "  -s, --signal reload check FILE (as -t), then ask the running gateway to\n"
                 "                      reload it and wait: exit 0 once it runs the new\n"
                 "                      config, 1 when the file or the reload failed\n"
                 "  -p, --pid PID       the gateway -s talks to (default: $MAINPID, which\n"
                 "                      systemd sets for ExecReload)\n"
                 "  -l, --log-level L   error, warn, notice (default), info or debug; wins over\n"
                 "                      the config's log.level\n"
                 "  -v, --version       print the version and exit\n"
                 "  -V, --build-info    print version, git commit, compiler, library versions\n"
                 "                      and the bundled plugins, and exit\n"
                 "  -h, --help          print this help and exit\n"
                 "\n"
                 "Signals: SIGTERM/SIGINT stop accepting and drain in-flight requests;\n"
                 "SIGHUP reloads the configuration; SIGUSR1 reopens log files.\n"
                 "Exit codes: 0 success, 1 configuration or runtime error, 2 usage.\n");
}

/* Every error of the file, each on its own "FILE:LINE:COL: message" line. */
static void print_errors(const tg_conf_errors_t *errs, const tg_conf_err_t *err)
{
    if (errs->n == 0) {
        fprintf(stderr, "%s\n", err->msg);
        return;
    }
    for (size_t i = 0; i < errs->n; i++)
        fprintf(stderr, "%s\n", errs->msgs[i]);
    if (errs->total > errs->n)
        fprintf(stderr, "tollgate: %zu more errors not shown (the first %d are)\n",
                errs->total - errs->n, TG_CONF_MAX_ERRORS);
}

/* -s reload, once the file passed the check. */
static int request_reload(const char *pid_text, const char *path)
{
    char *end = NULL;
    long pid = pid_text != NULL ? strtol(pid_text, &end, 10) : 0;
    if (pid_text == NULL || *end != '\0' || pid <= 1) {
        fprintf(stderr, "tollgate: -s reload needs the gateway's pid (-p PID or $MAINPID)\n");
        return 2;
    }
    char why[256];
    int rc = tg_reload_request((pid_t)pid, RELOAD_TIMEOUT_MS, why, sizeof(why));
    if (rc == 0)
        fprintf(stderr, "tollgate: pid %ld reloaded %s\n", pid, path);
    else if (rc == 1)
        fprintf(stderr,
                "tollgate: pid %ld could not reload its configuration and keeps the previous "
                "one: see its log\n",
                pid);
    else
        fprintf(stderr, "tollgate: reload: %s\n", why);
    return rc == 0 ? 0 : 1;
}

static int parse_level(const char *s)
{
    static const char *const names[] = {"error", "warn", "notice", "info", "debug"};
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'},
        {"dump", no_argument, NULL, 'T'},
        {"build-info", no_argument, NULL, 'V'},
        {"signal", required_argument, NULL, 's'},
        {"pid", required_argument, NULL, 'p'},
        {"log-level", required_argument, NULL, 'l'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = DEFAULT_CONFIG;
    int test = 0, dump = 0, reload = 0, c;
    const char *pid_text = getenv("MAINPID");
    tg_ev_alloc_init(); /* before libevent allocates anything */
    while ((c = getopt_long(argc, argv, "c:tTs:p:l:vVh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test = 1;
            break;
        case 'T':
            test = dump = 1;
            break;
        case 'V':
            return tg_build_info_print(stdout, tg_chain_default_plugin_dir());
        case 's':
            if (strcmp(optarg, "reload") != 0) {
                fprintf(stderr, "tollgate: unknown signal '%s' (reload)\n", optarg);
                return 2;
            }
            test = reload = 1;
            break;
        case 'p':
            pid_text = optarg;
            break;
        case 'l': {
            int lv = parse_level(optarg);
            if (lv < 0) {
                fprintf(stderr, "tollgate: unknown log level '%s'\n", optarg);
                return 2;
            }
            tg_log_level = (tg_log_level_t)lv;
            tg_log_level_from_cli = true;
            break;
        }
        case 'v':
            printf("tollgate %s\n", TG_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tollgate: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    tg_config_t *cfg = NULL;
    tg_conf_err_t err = {{0}};
    tg_conf_errors_t errs;
    tg_config_opts_t lo = {.check_only = test, .errors = &errs, .print = dump ? stdout : NULL};
    if (tg_config_load_opts(path, &lo, &cfg, &err) < 0) {
        print_errors(&errs, &err);
        if (test)
            fprintf(stderr, "tollgate: configuration file %s test failed\n", path);
        return 1;
    }
    if (test) {
        fprintf(stderr, "tollgate: configuration file %s test is successful\n", path);
        tg_config_unref(cfg);
        return reload ? request_reload(pid_text, path) : 0;
    }
    int rc = tg_server_run(cfg);
    tg_config_unref(cfg);
    return rc;
}
