/*
 * late_adopter.c -- a FastCGI program on this library, run by the fcgi-pm program,
 * that pauses between FCGX_Init and pm_manage: the window in which libfcgi's own
 * TERM handler is in place and the worker's is not yet.
 *
 * Usage (as fcgi-pm's program): late_adopter PAUSE_MS [no_signals]
 *   logs "late_adopter (pid P): FCGX_Init done", sleeps PAUSE_MS, then calls
 *   pm_manage (with "no_signals" 1 if asked) and serves descriptor 0
 *   ("late_adopter <pid>" to each request).
 */
#include <fcgiapp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fcgi_pm_fcgx.h"

int main(int argc, char **argv)
{
    long pause_ms = argc > 1 ? atol(argv[1]) : 500;
    if (FCGX_Init() != 0)
        return 1;
    fprintf(stderr, "late_adopter (pid %d): FCGX_Init done\n", (int)getpid());
    struct timespec pause = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0) {
    }
    pm_t *pm = pm_create();
    if (pm && argc > 2 && strcmp(argv[2], "no_signals") == 0)
        pm_parameter(pm, "no_signals", "1");
    if (!pm || pm_manage(pm) != PM_WORKER) {
        fprintf(stderr, "late_adopter: not made a worker\n");
        return 1;
    }
    FCGX_Request req;
    FCGX_InitRequest(&req, 0, 0);
    while (pm_fcgx_accept(pm, &req) >= 0) {
        pm_pre_dispatch(pm);
        FCGX_FPrintF(req.out, "Content-Type: text/plain\r\n\r\nlate_adopter %d\n", (int)getpid());
        FCGX_Finish_r(&req);
        pm_post_dispatch(pm);
    }
    pm_destroy(pm);
    return 0;
}
