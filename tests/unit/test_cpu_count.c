/* Unit tests for src/cpu_count.c: affinity and cgroup v2 cpu.max. */
#include <check.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpu_count.h"

static char dir[] = "/tmp/tg_test_cpu_XXXXXX";

static void put(const char *rel, const char *text)
{
    char path[PATH_MAX], cmd[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
    ck_assert_int_eq(system(cmd), 0);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static unsigned quota(void)
{
    char proc[PATH_MAX], root[PATH_MAX];
    snprintf(proc, sizeof(proc), "%s/proc_cgroup", dir);
    snprintf(root, sizeof(root), "%s/cg", dir);
    return tg_cpu_quota(proc, root);
}

static void setup(void)
{
    strcpy(dir, "/tmp/tg_test_cpu_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(quota_of_own_cgroup)
{
    put("proc_cgroup", "0::/system.slice/tollgate.service\n");
    put("cg/system.slice/tollgate.service/cpu.max", "150000 100000\n");
    ck_assert_uint_eq(quota(), 2); /* 1.5 CPUs of time: rounded up */
    put("cg/system.slice/tollgate.service/cpu.max", "max 100000\n");
    ck_assert_uint_eq(quota(), 0);
}
END_TEST

START_TEST(parent_quota_binds)
{
    put("proc_cgroup", "0::/kubepods/pod1/ctr\n");
    put("cg/kubepods/pod1/ctr/cpu.max", "max 100000\n");
    put("cg/kubepods/pod1/cpu.max", "300000 100000\n");
    put("cg/kubepods/cpu.max", "800000 100000\n");
    ck_assert_uint_eq(quota(), 3);
    put("cg/kubepods/pod1/ctr/cpu.max", "50000 100000\n");
    ck_assert_uint_eq(quota(), 1);
}
END_TEST

START_TEST(no_cgroup_v2)
{
    /* cgroup v1 lines only, a missing file, garbage: no limit. */
    put("proc_cgroup", "12:cpu,cpuacct:/x\n");
    ck_assert_uint_eq(quota(), 0);
    put("proc_cgroup", "0::/\n");
    ck_assert_uint_eq(quota(), 0);
    put("cg/cpu.max", "junk\n");
    ck_assert_uint_eq(quota(), 0);
    put("cg/cpu.max", "200000 100000\n");
    ck_assert_uint_eq(quota(), 2); /* the root's own, when set */
    char proc[PATH_MAX];
    snprintf(proc, sizeof(proc), "%s/absent", dir);
    ck_assert_uint_eq(tg_cpu_quota(proc, "/nonexistent"), 0);
}
END_TEST

START_TEST(count_is_affinity_at_most)
{
    cpu_set_t set;
    ck_assert_int_eq(sched_getaffinity(0, sizeof(set), &set), 0);
    unsigned n = tg_cpu_count();
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_le(n, (unsigned)CPU_COUNT(&set));
    /* Pinned to one CPU, the count follows (what taskset -c 0 would do). */
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &set)) {
            CPU_SET(i, &one);
            break;
        }
    ck_assert_int_eq(sched_setaffinity(0, sizeof(one), &one), 0);
    ck_assert_uint_eq(tg_cpu_count(), 1);
    ck_assert_int_eq(sched_setaffinity(0, sizeof(set), &set), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cpu_count");
    TCase *tc = tcase_create("cpu_count");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, quota_of_own_cgroup);
    tcase_add_test(tc, parent_quota_binds);
    tcase_add_test(tc, no_cgroup_v2);
    tcase_add_test(tc, count_is_affinity_at_most);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
