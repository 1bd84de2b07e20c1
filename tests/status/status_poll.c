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
        const pm_pool_status_t *p = pm_status_pool(st);
        if (p->requests < last) {
            if (regressions++ < 5)
                fprintf(stderr, "requests went down: %llu after %llu\n", p->requests, last);
        }
        last = p->requests;
        int counted[5] = {0};
        for (int i = 0; i < p->workers; i++) {
            const pm_worker_status_t *w = pm_status_worker(st, i);
            if (w->state >= 0 && w->state < 5)
                counted[w->state]++;
            /* Named by pm_fcgx_accept from the params first (GET, the client), then
             * by the app: either naming is whole, a mix of the two is torn. */
            if (strncmp(w->uri, "/named?k=", 9) != 0 ||
                (strcmp(w->method, "GET") == 0 && strcmp(w->remote, "127.0.0.1") == 0))
                continue;
            named++;
            const char *k = w->uri + 9;
            if (w->method[0] != 'M' || strcmp(w->method + 1, k) != 0 || strcmp(w->remote, k) != 0) {
                if (torn++ < 5)
                    fprintf(stderr, "torn: %s %s (%s)\n", w->method, w->uri, w->remote);
            }
        }
        int sum = counted[0] + counted[1] + counted[2] + counted[3] + counted[4];
        if (sum != p->workers || p->idle != counted[PM_WORKER_IDLE] || p->starting != counted[PM_WORKER_STARTING] ||
            p->stopping != counted[PM_WORKER_STOPPING] || p->workers < 0 || p->workers > 100000)
            inconsistent++;
    }
    printf("reads %ld named %ld torn %ld regressions %ld inconsistent %ld failed %ld\n", reads, named, torn,
           regressions, inconsistent, failed);
    pm_status_close(st);
    return reads > 0 && torn == 0 && regressions == 0 && inconsistent == 0 ? 0 : 1;
}
