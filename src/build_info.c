/* `tollgate -V` (src/build_info.h). */
#include "build_info.h"

#include <dlfcn.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#ifdef TG_HAVE_NGHTTP2
#include <nghttp2/nghttp2.h>
#endif

#include "chain.h"
#include "tg_build_config.h"
#include "tg_version.h"
#include "tollgate/plugin.h"

static void libraries(FILE *out)
{
    char pcre[64] = "?";
    pcre2_config(PCRE2_CONFIG_VERSION, pcre);
    fprintf(out, "libraries:\n");
    fprintf(out, "  libevent %s (built with %s)\n", event_get_version(), LIBEVENT_VERSION);
    fprintf(out, "  OpenSSL %s (built with %s)\n", OpenSSL_version(OPENSSL_VERSION_STRING),
            OPENSSL_VERSION_STR);
    uint32_t jit = 0;
    pcre2_config(PCRE2_CONFIG_JIT, &jit);
    fprintf(out, "  PCRE2 %s, JIT %s\n", pcre, jit ? "available" : "not available");
    fprintf(out, "  libyaml %s\n", yaml_get_version_string());
    /* hiredis has no run-time version call: the headers' it is. */
    fprintf(out, "  hiredis %d.%d.%d\n", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    fprintf(out, "  jansson %s (built with %s)\n", jansson_version_str(), JANSSON_VERSION);
#ifdef TG_HAVE_NGHTTP2
    fprintf(out, "  nghttp2 %s (built with %s)\n", nghttp2_version(0)->version_str,
            NGHTTP2_VERSION);
#endif
}

/* One module: "name version (API major.minor)", or why not. */
static int plugin(FILE *out, const char *file, const char *shown)
{
    void *h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(out, "  %s: cannot load: %s\n", shown, dlerror());
        return 1;
    }
    const tg_plugin_t *d = dlsym(h, "tg_plugin");
    int rc = 0;
    if (d == NULL) {
        fprintf(out, "  %s: not a tollgate plugin\n", shown);
        rc = 1;
    } else if (d->abi.major != TG_PLUGIN_API_MAJOR ||
               d->abi.size < offsetof(tg_plugin_t, version) + sizeof(d->version) ||
               d->name == NULL) {
        /* Another major, or a descriptor older than `version`: name the ABI only. */
        fprintf(out, "  %s (API %u.%u)\n", shown, (unsigned)d->abi.major, (unsigned)d->abi.minor);
    } else {
        fprintf(out, "  %s %s (API %u.%u)\n", d->name, d->version ? d->version : "(no version)",
                (unsigned)d->abi.major, (unsigned)d->abi.minor);
    }
    dlclose(h);
    return rc;
}

static int plugins(FILE *out, const char *dir)
{
    char **names = tg_chain_plugins_in(dir);
    if (names == NULL || names[0] == NULL) {
        fprintf(out, "plugins: none in %s\n", dir);
        tg_chain_plugins_free(names);
        return 0;
    }
    fprintf(out, "plugins in %s (this core: API %d.%d):\n", dir, TG_PLUGIN_API_MAJOR,
            TG_PLUGIN_API_MINOR);
    int rc = 0;
    for (size_t i = 0; names[i] != NULL; i++) {
        char file[PATH_MAX];
        if (tg_chain_plugin_file(dir, names[i], file, sizeof(file)) == 0)
            rc |= plugin(out, file, names[i]);
    }
    tg_chain_plugins_free(names);
    return rc;
}

int tg_build_info_print(FILE *out, const char *plugin_dir)
{
    fprintf(out, "tollgate %s (git %s)\n", TG_VERSION, TG_GIT_COMMIT);
    fprintf(out, "built with %s, %s build\n", TG_COMPILER, TG_BUILDTYPE);
    libraries(out);
    return plugins(out, plugin_dir);
}
