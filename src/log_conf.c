/* The `log:` section (log_conf.h). */
#include "log_conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

bool tg_log_level_from_cli;

typedef struct {
    uint8_t level;
    uint8_t format;
    char *path;
} keys_t;

/* Index 5: "not set" (the default), never written by a user. */
static const char *const levels[] = {"error", "warn", "notice", "info", "debug", NULL};
static const char *const formats[] = {"text", "json", NULL};

static const tg_conf_field_t fields[] = {
    {"level", TG_CONF_FIELD_ENUM, TG_CONF_AT(keys_t, level), .names = levels, .def = 5},
    {"format", TG_CONF_FIELD_ENUM, TG_CONF_AT(keys_t, format), .names = formats},
    {"path", TG_CONF_FIELD_STRING, TG_CONF_AT(keys_t, path), .flags = TG_CONF_NONEMPTY,
     .max = 4095},
    TG_CONF_END,
};

int tg_log_conf_parse(tg_config_t *cfg, const tg_conf_node_t *n, tg_conf_err_t *err)
{
    keys_t k = {0};
    cfg->log.level = -1;
    if (tg_conf_read(n, fields, "log", &k, err) < 0) {
        tg_conf_fields_free(fields, &k);
        return -1;
    }
    cfg->log.level = k.level == 5 ? -1 : k.level;
    cfg->log.json = k.format == 1;
    if (k.path != NULL && strcmp(k.path, "stderr") != 0) {
        char buf[8192];
        snprintf(buf, sizeof(buf), "%s%s%s", k.path[0] == '/' ? "" : cfg->dir,
                 k.path[0] == '/' ? "" : "/", k.path);
        cfg->log.path = strdup(buf); /* freed with the config */
    }
    tg_conf_fields_free(fields, &k);
    return 0;
}

int tg_log_conf_apply(const tg_config_t *cfg, char *err, size_t errlen)
{
    if (tg_log_set_output(cfg->log.path, cfg->log.json, err, errlen) < 0)
        return -1;
    if (cfg->log.level >= 0 && !tg_log_level_from_cli)
        tg_log_level = (tg_log_level_t)cfg->log.level;
    return 0;
}
