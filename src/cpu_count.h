/*
 * How many CPUs this process may use: what `workers: auto` starts.
 *
 * Online CPUs overstate it twice in a container or a systemd slice: the
 * affinity mask (taskset, cpuset, Kubernetes static CPU manager) may allow
 * fewer, and a cgroup v2 `cpu.max` quota ("200000 100000" = 2 CPUs of time)
 * throttles a process that runs more threads than it has quota for. The
 * answer is the smaller of the two, at least 1.
 */
#ifndef TG_CPU_COUNT_H
#define TG_CPU_COUNT_H

/* CPUs in the affinity mask (sched_getaffinity), limited by the cgroup v2
 * quota of this process's cgroup and of every ancestor (the tightest wins,
 * rounded up: 1.5 CPUs of quota -> 2). */
unsigned tg_cpu_count(void);

/* The quota part, from files: proc_cgroup is /proc/self/cgroup, root the
 * cgroup v2 mount (/sys/fs/cgroup). Returns the CPUs the tightest
 * `cpu.max` allows, rounded up, or 0 when nothing limits (no cgroup v2,
 * "max", unreadable files). */
unsigned tg_cpu_quota(const char *proc_cgroup, const char *root);

#endif
