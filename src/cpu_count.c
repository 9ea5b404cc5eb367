/* CPUs this process may use (src/cpu_count.h). */
#include "cpu_count.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* "QUOTA PERIOD" or "max PERIOD": CPUs, rounded up; 0 for no limit. */
static unsigned read_cpu_max(const char *file)
{
    FILE *f = fopen(file, "re");
    if (f == NULL)
        return 0;
    char quota[32];
    unsigned long long q = 0, period = 0;
    int n = fscanf(f, "%31s %llu", quota, &period);
    fclose(f);
    if (n != 2 || strcmp(quota, "max") == 0 || period == 0 || sscanf(quota, "%llu", &q) != 1 ||
        q == 0)
        return 0;
    unsigned long long cpus = (q + period - 1) / period;
    return cpus > UINT_MAX ? UINT_MAX : (unsigned)cpus;
}

/* The cgroup v2 path of this process: the "0::/path" line. */
static int cgroup_path(const char *proc_cgroup, char *out, size_t cap)
{
    FILE *f = fopen(proc_cgroup, "re");
    if (f == NULL)
        return -1;
    char line[PATH_MAX + 8];
    int rc = -1;
    while (rc < 0 && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "0::", 3) != 0)
            continue;
        line[strcspn(line, "\n")] = '\0';
        if ((size_t)snprintf(out, cap, "%s", line + 3) < cap)
            rc = 0;
    }
    fclose(f);
    return rc;
}

unsigned tg_cpu_quota(const char *proc_cgroup, const char *root)
{
    char path[PATH_MAX];
    if (cgroup_path(proc_cgroup, path, sizeof(path)) < 0)
        return 0;
    unsigned best = 0;
    /* From the process's cgroup up to the root: a parent's quota binds too. */
    for (;;) {
        char file[PATH_MAX + 64];
        snprintf(file, sizeof(file), "%s%s/cpu.max", root, strcmp(path, "/") == 0 ? "" : path);
        unsigned cpus = read_cpu_max(file);
        if (cpus != 0 && (best == 0 || cpus < best))
            best = cpus;
        char *slash = strrchr(path, '/');
        if (slash == NULL || strcmp(path, "/") == 0)
            break;
        if (slash == path)
            path[1] = '\0';
        else
            *slash = '\0';
    }
    return best;
}

unsigned tg_cpu_count(void)
{
    cpu_set_t set;
    long n = 0;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        n = CPU_COUNT(&set);
    if (n < 1)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    unsigned quota = tg_cpu_quota("/proc/self/cgroup", "/sys/fs/cgroup");
    if (quota != 0 && quota < (unsigned long)n)
        n = (long)quota;
    return (unsigned)n;
}
