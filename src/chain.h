/*
 * Plugin chains: loading plugin modules by name or path, creating their
 * instances from the config, and running a request through a chain's phases.
 *
 * Config rules (docs/design.md): the global `plugins:` list runs first, then
 * the route's own list. In a route, an entry naming a global plugin without a
 * `config:` key refers to that global instance (`enabled: false` switches it
 * off for the route); an entry with `config:` for a global plugin's name
 * replaces the global instance for that route, at the global's position.
 */
#ifndef TG_CHAIN_H
#define TG_CHAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "tollgate/plugin.h"

typedef struct tg_plugin_inst_s {
    const tg_plugin_t *plugin;
    void *instance;
    char *name;
    size_t index; /* in cfg->instances: index of per-worker data */
    bool enabled; /* as configured */
} tg_plugin_inst_t;

typedef struct tg_chain_s {
    tg_plugin_inst_t **items;
    size_t n;
    size_t *ctx_offset; /* per item: offset of its per-request slot */
    size_t ctx_size;    /* total per-request slots */
    bool has_request_body, has_response_head, has_response_body, has_log;
} tg_chain_t;

/* Parses a `plugins:` list (global when route is NULL) into a chain. For a
 * route, global is the already built global chain. */
int tg_chain_parse(tg_config_t *cfg, const tg_conf_node_t *list, tg_route_t *route,
                   const tg_chain_t *global, tg_chain_t **out, tg_conf_err_t *err);
/* The chain of a route that has no `plugins:` key: the global one. */
tg_chain_t *tg_chain_copy(const tg_chain_t *global);
void tg_chain_free(tg_chain_t *chain);

/* Destroys every instance created for cfg. */
void tg_chain_destroy_instances(tg_config_t *cfg);

/* Directory searched for bundled plugins when the config has no plugin_path:
 * <dir of the executable>/plugins when it exists (a build tree), else the
 * install directory. */
const char *tg_chain_default_plugin_dir(void);

/* The module file of bundled plugin name in dir: NAME.so, else NAME/NAME.so.
 * Returns 0 with file filled, or -1 when neither exists. */
int tg_chain_plugin_file(const char *dir, const char *name, char *file, size_t cap);
/* The names of the bundled plugins in dir (those tg_chain_plugin_file finds),
 * sorted, NULL-terminated; NULL when memory ran out. Free with
 * tg_chain_plugins_free. */
char **tg_chain_plugins_in(const char *dir);
void tg_chain_plugins_free(char **names);

/* ---- running a request through its chain (chain_run.c) ---- */
typedef struct tg_request_s tg_request_t;

enum {
    TG_CHAIN_NEXT = 0, /* every plugin continued: forward upstream */
    TG_CHAIN_PAUSED,   /* a plugin paused; tg_request_resume() continues */
    TG_CHAIN_DONE,     /* req->run.reply holds the response to send */
};

/* request_head hooks from req->run.pos on. */
int tg_chain_request_head(tg_request_t *req);
/* tg_request_resume() of the paused plugin (req->run.pos) with status:
 * that plugin's outcome, then the request_head hooks after it. */
int tg_chain_resume(tg_request_t *req, int status);
/* tg_request_resume() inside the running request_head hook: recorded, and
 * applied by tg_chain_request_head() when the hook returns PAUSE. */
void tg_chain_note_resume(tg_request_t *req, int status);
/* response_head hooks, last plugin first, on req->resp.head, skipping those that
 * already saw a response of this request. Returns 0, or 1 when a hook
 * answered or failed: req->run.reply then holds what replaces the response (the
 * plugin's answer, or a 500); the caller drops the response and sends it. */
int tg_chain_response_head(tg_request_t *req);
/* request_body (response = false) or response_body hooks on chunk; returns 0,
 * or -1 when a hook did not continue: req->run.reply then holds what replaces the
 * response (the plugin's answer, or a 500), sent when no head byte went out
 * yet. */
int tg_chain_body(tg_request_t *req, bool response, struct evbuffer *chunk, bool last);
/* log hooks; never fails. */
void tg_chain_log(tg_request_t *req);

/* Per-worker plugin state: worker_init of every instance of cfg (on the
 * worker thread), and the reverse. */
void **tg_chain_worker_init(const tg_config_t *cfg, struct event_base *base, unsigned worker_id);
void tg_chain_worker_fini(const tg_config_t *cfg, void **data);
#endif
