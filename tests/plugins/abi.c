/*
 * A plugin built several times with a different descriptor each, for the ABI
 * rules of include/tollgate/plugin.h (tests/integration/test_plugin_abi.py).
 * Exactly one ABI_* is defined by tests/meson.build:
 *
 *   ABI_CURRENT  TG_PLUGIN_ABI: this core's major.minor, version "9.9.9"
 *   ABI_OLDER    built for 2.0: abi.size ends at `reopen`; the bytes after it
 *                (where 2.1's `version` sits in this core) hold a string the
 *                core must never read
 *   ABI_NEWER    a minor beyond the core's, with a longer descriptor
 *   ABI_MAJOR    the next major
 *   ABI_V1       the API 1 layout: `uint32_t api_version = 1` first
 *   ABI_SMALL    a major.minor the core knows, a size below the 2.0 descriptor
 *
 * Loaded, it sets request header X-Abi: <variant> and answers nothing itself.
 */
#include <stddef.h>
#include <string.h>

#include "tollgate/plugin.h"

#if defined(ABI_CURRENT)
#define VARIANT "current"
#elif defined(ABI_OLDER)
#define VARIANT "older"
#elif defined(ABI_NEWER)
#define VARIANT "newer"
#elif defined(ABI_MAJOR)
#define VARIANT "major"
#elif defined(ABI_V1)
#define VARIANT "v1"
#elif defined(ABI_SMALL)
#define VARIANT "small"
#else
#error "define one ABI_* variant"
#endif

static int create(const tg_conf_node_t *node, const tg_plugin_env_t *env, void **out,
                  tg_conf_err_t *err)
{
    (void)env;
    if (node->type != TG_CONF_NULL)
        return tg_conf_error(err, node, "the abi test plugin takes no config");
    *out = NULL;
    return 0;
}

static tg_filter_status_t request_head(tg_request_t *r, const tg_filter_t *f)
{
    (void)f;
    tg_request_set_header(r, "X-Abi", VARIANT, strlen(VARIANT));
    return TG_FILTER_CONTINUE;
}

#define SIZE_2_0 (offsetof(tg_plugin_t, reopen) + sizeof(void (*)(void *)))

#if defined(ABI_CURRENT)
TG_PLUGIN_EXPORT const tg_plugin_t tg_plugin = {
    .abi = TG_PLUGIN_ABI,
    .name = "abi",
    .version = "9.9.9",
    .create = create,
    .request_head = request_head,
};
#elif defined(ABI_OLDER)
/* A 2.0 module's descriptor followed by unrelated data: with a 2.0 module,
 * whatever the linker placed after it. */
TG_PLUGIN_EXPORT const tg_plugin_t tg_plugin = {
    .abi = {2, 0, (uint32_t)SIZE_2_0},
    .name = "abi",
    .create = create,
    .request_head = request_head,
    .version = "MUST-NOT-BE-READ",
};
#elif defined(ABI_NEWER)
TG_PLUGIN_EXPORT const struct {
    tg_plugin_t d;
    void (*hook_of_the_future)(void *);
} tg_plugin = {
    .d = {.abi = {TG_PLUGIN_API_MAJOR, TG_PLUGIN_API_MINOR + 1,
                  (uint32_t)(sizeof(tg_plugin_t) + sizeof(void *))},
          .name = "abi",
          .create = create,
          .request_head = request_head},
};
#elif defined(ABI_MAJOR)
TG_PLUGIN_EXPORT const tg_plugin_t tg_plugin = {
    .abi = {TG_PLUGIN_API_MAJOR + 1, 0, (uint32_t)sizeof(tg_plugin_t)},
    .name = "abi",
    .create = create,
    .request_head = request_head,
};
#elif defined(ABI_V1)
TG_PLUGIN_EXPORT const struct {
    uint32_t api_version;
    const char *name;
    size_t ctx_size;
    void *create, *destroy, *worker_init, *worker_fini, *request_head;
} tg_plugin = {1, "abi", 0, (void *)create, NULL, NULL, NULL, (void *)request_head};
#elif defined(ABI_SMALL)
TG_PLUGIN_EXPORT const tg_plugin_t tg_plugin = {
    .abi = {TG_PLUGIN_API_MAJOR, 0, (uint32_t)offsetof(tg_plugin_t, request_head)},
    .name = "abi",
    .create = create,
    .request_head = request_head,
};
#endif
