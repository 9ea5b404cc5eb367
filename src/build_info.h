/* `tollgate -V`: what this binary is made of, for bug reports and for an
 * operator checking that a package has the libraries it should. */
#ifndef TG_BUILD_INFO_H
#define TG_BUILD_INFO_H

#include <stdio.h>

/* Version and git commit, compiler and build type, each library's version
 * (the one running, and the one built against where they may differ), and
 * the bundled plugins found in plugin_dir with their version and plugin API.
 * Returns 0, or 1 when a plugin there could not be loaded (it is listed with
 * the reason). */
int tg_build_info_print(FILE *out, const char *plugin_dir);

#endif
