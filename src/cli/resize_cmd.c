/* fcgi-pm resize: a running static pool's size set, as TTIN and TTOU change it by one.
 * The size goes to the manager as the value of a SIGTTIN sent with sigqueue(3); the
 * command then reads the manager's status until its target is that size (a signal
 * that was already pending is not queued twice: it is sent again each 0.5 s). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fcgi_pm.h"
#include "resize_cmd.h"

static void resize_usage(FILE *out)
{
    fprintf(out,
            "usage: fcgi-pm resize SIZE MANAGER\n"
            "Sets the number of workers of a running static pool: more are started at once;\n"
            "of fewer, idle workers stop at once and busy ones after their request. MANAGER\n"
            "is the manager's pid, pid file or status socket. The size shows in the status\n"
            "and in systemd's STATUS. TTIN and TTOU to the manager add and remove one.\n"
            "Exit 0 once the manager has taken the size; 1 if it has not within 2 s (its\n"
            "log says why), or at once for a dynamic or ondemand pool; 2 for bad usage.\n");
}

__attribute__((noreturn, format(printf, 2, 3))) static void resize_die(int status, const char *fmt, ...)
{
    va_list ap;
    fputs("fcgi-pm resize: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(status);
}

/* The manager's pid and target, from a fresh status; 0 if it cannot be read, or
 * (said once) if the pool sizes itself. */
static int read_target(const char *manager, long long *pid, long long *target)
{
    pm_status_t *st = pm_status_new();
    int ok = st && pm_status_open(st, manager) == 0 && pm_status_read(st, 0) == 0 &&
             pm_status_value(st, PM_STATUS_POOL, PM_POOL_MANAGER_PID, pid) == 0 &&
             pm_status_value(st, PM_STATUS_POOL, PM_POOL_TARGET, target) == 0;
    if (!ok && st)
        fprintf(stderr, "fcgi-pm resize: %s\n", pm_status_errmsg(st));
    const char *mode = ok ? pm_status_text(st, PM_STATUS_POOL, PM_POOL_MODE) : NULL;
    if (mode && strcmp(mode, "static") != 0) {
        fprintf(stderr, "fcgi-pm resize: %s: pool %s sizes itself (its max_workers bounds it); not resized\n",
                manager, mode);
        ok = 0;
    }
    pm_status_close(st);
    return ok;
}

int resize_main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        resize_usage(stdout);
        return 0;
    }
    if (argc != 3)
        resize_die(2, "give SIZE and MANAGER (fcgi-pm resize SIZE MANAGER; see --help)");
    char *end;
    errno = 0;
    long size = strtol(argv[1], &end, 10);
    if (!*argv[1] || *end || errno || size < 1 || size > 100000)
        resize_die(2, "SIZE: '%s' is not a whole number from 1 to 100000", argv[1]);
    long long pid = 0, target = 0, before = 0;
    if (!read_target(argv[2], &pid, &before))
        return 1;
    for (int tick = 0; tick < 100; tick++) {
        if (tick % 25 == 0) {
            union sigval v = {.sival_int = (int)size};
            if (sigqueue((pid_t)pid, SIGTTIN, v) != 0)
                resize_die(1, "signal to pid %lld: %s", pid, strerror(errno));
        }
        struct timespec pause = {0, 20 * 1000000};
        nanosleep(&pause, NULL);
        if (!read_target(argv[2], &pid, &target))
            return 1;
        if (target == size) {
            printf("pool resized: %lld -> %ld workers\n", before, size);
            return 0;
        }
    }
    resize_die(1, "the manager (pid %lld) did not take size %ld within 2 s (its log says why)", pid, size);
}
