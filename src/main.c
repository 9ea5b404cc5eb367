/* Command line: run the gateway, or check a configuration (-t) like nginx -t. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "log_conf.h"
#include "server.h"
#include "tg_build_config.h"

#define DEFAULT_CONFIG "/etc/tollgate/tollgate.yaml"

static void usage(FILE *out)
{
    fprintf(out, "Usage: tollgate [-c FILE] [-t] [-l LEVEL]\n"
                 "\n"
                 "An HTTP/1.1 API gateway.\n"
                 "\n"
                 "  -c, --config FILE   configuration file (default " DEFAULT_CONFIG ")\n"
                 "  -t, --test          check the configuration and exit: 0 if valid, otherwise\n"
                 "                      FILE:LINE:COL: message on stderr and exit 1\n"
                 "  -l, --log-level L   error, warn, notice (default), info or debug; wins over\n"
                 "                      the config's log.level\n"
                 "  -v, --version       print the version and exit\n"
                 "  -h, --help          print this help and exit\n"
                 "\n"
                 "Signals: SIGTERM/SIGINT stop accepting and drain in-flight requests.\n");
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
        {"log-level", required_argument, NULL, 'l'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = DEFAULT_CONFIG;
    int test = 0, c;
    while ((c = getopt_long(argc, argv, "c:tl:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test = 1;
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
    if (tg_config_load(path, &cfg, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        if (test)
            fprintf(stderr, "tollgate: configuration file %s test failed\n", path);
        return 1;
    }
    if (test) {
        fprintf(stderr, "tollgate: configuration file %s test is successful\n", path);
        tg_config_unref(cfg);
        return 0;
    }
    int rc = tg_server_run(cfg);
    tg_config_unref(cfg);
    return rc;
}
