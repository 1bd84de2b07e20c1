/*
 * status_poll.c -- reads a pool's status in a tight loop through the public API and
 * checks every snapshot for what a torn read would show.
 *
 * Usage: status_poll MANAGER SECONDS
 * Checks, in each snapshot: a worker named by status_app's /named?k=K has method
 * "M<K>" and remote "<K>" (written together: a mix means a torn view); the states
 * add up to the workers; the requests served never go down from one snapshot to the
 * next (a worker reaped between two reads is counted once, never twice or not at
 * all). Prints "reads N named M torn T regressions R inconsistent I failed F" and
 * exits 0 if T, R and I are 0 and some reads succeeded. A failed read (the manager
 * mid-exit) counts in F.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fcgi_pm.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: status_poll MANAGER SECONDS\n");
        return 2;
    }
    pm_status_t *st = pm_status_new();
    if (!st || pm_status_open(st, argv[1]) < 0) {
        fprintf(stderr, "status_poll: %s\n", st ? pm_status_errmsg(st) : "out of memory");
        return 1;
    }
    double end = now() + atof(argv[2]);
    long reads = 0, named = 0, torn = 0, regressions = 0, inconsistent = 0, failed = 0;
    unsigned long long last = 0;
    while (now() < end) {
        if (pm_status_read(st, 0) < 0) {
            if (failed++ == 0)
                fprintf(stderr, "status_poll: %s\n", pm_status_errmsg(st));
            continue;
        }
        reads++;
        long long requests = 0, workers = 0, idle = 0, starting = 0, stopping = 0;
        pm_status_value(st, PM_STATUS_POOL, PM_POOL_REQUESTS, &requests);
        pm_status_value(st, PM_STATUS_POOL, PM_POOL_WORKERS, &workers);
        pm_status_value(st, PM_STATUS_POOL, PM_POOL_IDLE, &idle);
        pm_status_value(st, PM_STATUS_POOL, PM_POOL_STARTING, &starting);
        pm_status_value(st, PM_STATUS_POOL, PM_POOL_STOPPING, &stopping);
        if ((unsigned long long)requests < last) {
            if (regressions++ < 5)
                fprintf(stderr, "requests went down: %lld after %llu\n", requests, last);
        }
        last = (unsigned long long)requests;
        long long counted[5] = {0};
        for (int i = 0; i < pm_status_workers(st); i++) {
            long long state = -1;
            pm_status_value(st, i, PM_SLOT_STATE, &state);
            if (state >= 0 && state < 5)
                counted[state]++;
            const char *uri = pm_status_text(st, i, PM_SLOT_URI);
            const char *method = pm_status_text(st, i, PM_SLOT_METHOD);
            const char *remote = pm_status_text(st, i, PM_SLOT_REMOTE);
            /* Named by pm_fcgx_accept from the params first (GET, the client), then
             * by the app: either naming is whole, a mix of the two is torn. */
            if (strncmp(uri, "/named?k=", 9) != 0 || (strcmp(method, "GET") == 0 && strcmp(remote, "127.0.0.1") == 0))
                continue;
            named++;
            const char *k = uri + 9;
            if (method[0] != 'M' || strcmp(method + 1, k) != 0 || strcmp(remote, k) != 0) {
                if (torn++ < 5)
                    fprintf(stderr, "torn: %s %s (%s)\n", method, uri, remote);
            }
        }
        long long sum = counted[0] + counted[1] + counted[2] + counted[3] + counted[4];
        if (sum != workers || idle != counted[PM_WORKER_IDLE] || starting != counted[PM_WORKER_STARTING] ||
            stopping != counted[PM_WORKER_STOPPING] || workers != pm_status_workers(st))
            inconsistent++;
    }
    printf("reads %ld named %ld torn %ld regressions %ld inconsistent %ld failed %ld\n", reads, named, torn,
           regressions, inconsistent, failed);
    pm_status_close(st);
    return reads > 0 && torn == 0 && regressions == 0 && inconsistent == 0 ? 0 : 1;
}
