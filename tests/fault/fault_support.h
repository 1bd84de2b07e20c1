/*
 * fault_support.h -- what the fault-injection programs (docs/reliability.md R1-R12) share
 * beyond pool_fixture.h: the pool size, the bounds that are no pass criterion, and
 * the manager's figures from /proc (descriptors, VmRSS, CPU time), percentiles, a
 * counter over a growing log, and the one-log-line-per-death check.
 */
#ifndef FAULT_SUPPORT_H
#define FAULT_SUPPORT_H

#include <sys/types.h>

#include "pool_fixture.h"

/* n of every scenario. */
#define N_WORKERS 8

/* Generous bounds for what is not a pass criterion (start-up, log lines, exits). */
#define FS_T_START 10000
#define FS_T_LINE 5000
#define FS_T_EXIT 10000

/* Under ASan every free goes to a quarantine (256 MB by default) that holds it back
 * to catch use after free, so VmRSS grows with any allocation churn however well the
 * memory is managed. Where VmRSS is measured (R1, R12) the quarantine is turned off
 * with this "ASAN_OPTIONS=..." entry (leaks are still reported at the manager's exit).
 * A static buffer. */
const char *fs_asan_no_quarantine(void);

/* Number of open descriptors of pid, or -1. */
int fs_fd_count(pid_t pid);
/* VmRSS of pid in KiB, or -1. */
long fs_rss_kib(pid_t pid);
/* utime + stime of pid in seconds, or -1. */
double fs_cpu_seconds(pid_t pid);

/* Nearest-rank percentile p (0..100) of v[0..n), sorted in place. */
double fs_percentile(double *v, int n, double p);

/* Counts the lines of a growing log that contain a needle, reading only what was
 * appended since the last call. */
typedef struct fs_tail {
    const char *path;
    const char *needle;
    off_t offset;
    char carry[PF_LINE_LEN]; /* an incomplete last line */
    size_t carry_len;
    long count;
} fs_tail_t;

/* The count so far, with the lines appended since the last call. */
long fs_tail_count(fs_tail_t *t);

/* Fails the test unless the "server (pid V) exited with status <status>" lines of
 * the app's log are exactly the deaths in pids[0..n) (a pid may repeat if it was
 * reused). Sorts pids. */
void fs_check_one_line_per_death(const pf_app_t *app, pid_t *pids, int n, int status);

#endif /* FAULT_SUPPORT_H */
