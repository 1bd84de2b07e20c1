/*
 * fault_support.c -- see fault_support.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fault_support.h"

const char *fs_asan_no_quarantine(void)
{
    static char entry[1024];
    const char *opts = getenv("ASAN_OPTIONS");
    snprintf(entry, sizeof entry,
             "ASAN_OPTIONS=%s%squarantine_size_mb=0:thread_local_quarantine_size_kb=0",
             opts ? opts : "", opts && *opts ? ":" : "");
    return entry;
}

int fs_fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

long fs_rss_kib(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    char *text = pu_read_file(path, NULL);
    if (!text)
        return -1;
    const char *p = strstr(text, "\nVmRSS:");
    long kib = p ? strtol(p + 7, NULL, 10) : -1;
    free(text);
    return kib;
}

double fs_cpu_seconds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *text = pu_read_file(path, NULL);
    if (!text)
        return -1;
    /* After "pid (comm) ": state is field 3, utime 14, stime 15. */
    char *p = strrchr(text, ')');
    unsigned long long utime = 0, stime = 0;
    int ok = p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                         &stime) == 2;
    free(text);
    return ok ? (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK) : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double fs_percentile(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int rank = (int)((p / 100.0) * n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

long fs_tail_count(fs_tail_t *t)
{
    int fd = open(t->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return t->count;
    char buf[65536];
    for (;;) {
        ssize_t got = pread(fd, buf, sizeof buf, t->offset);
        if (got <= 0)
            break;
        t->offset += got;
        for (ssize_t i = 0; i < got; i++) {
            if (buf[i] != '\n') {
                if (t->carry_len < sizeof t->carry - 1)
                    t->carry[t->carry_len++] = buf[i];
                continue;
            }
            t->carry[t->carry_len] = '\0';
            t->count += strstr(t->carry, t->needle) != NULL;
            t->carry_len = 0;
        }
    }
    close(fd);
    return t->count;
}

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return x < y ? -1 : x > y;
}

void fs_check_one_line_per_death(const pf_app_t *app, pid_t *pids, int n, int status)
{
    char before[PF_LINE_LEN], after[64];
    pf_mline(before, app, "server (pid ");
    snprintf(after, sizeof after, ") exited with status %d", status);
    pid_t *logged = calloc((size_t)n + 64, sizeof *logged);
    CHECK(logged != NULL, "out of memory");
    int n_logged = pu_collect_pids(app->log, before, after, logged, n + 64);
    qsort(pids, (size_t)n, sizeof *pids, cmp_pid);
    qsort(logged, (size_t)n_logged, sizeof *logged, cmp_pid);
    int missing = 0, extra = 0;
    for (int i = 0, j = 0; i < n || j < n_logged;) {
        if (j >= n_logged || (i < n && pids[i] < logged[j])) {
            if (missing++ < 5)
                print_error("killed pid %d has no 'exited with status %d' line\n", (int)pids[i],
                            status);
            i++;
        } else if (i >= n || logged[j] < pids[i]) {
            if (extra++ < 5)
                print_error("pid %d logged 'exited with status %d' but was not killed (or "
                            "twice)\n", (int)logged[j], status);
            j++;
        } else {
            i++;
            j++;
        }
    }
    free(logged);
    CHECK(n_logged == n && missing == 0 && extra == 0,
          "%d deaths, %d 'exited with status %d' lines (%d missing, %d extra)", n, n_logged,
          status, missing, extra);
}
