/* The part of the package that runs before Go's runtime: see start.c. */
#ifndef FCGIPM_GO_START_H
#define FCGIPM_GO_START_H

#include <fcgi_pm.h>

/* What this process is, as the constructor found it. */
enum {
    FCGIPM_NONE = 0,    /* the process the user started (or not a pool's at all) */
    FCGIPM_WORKER = 1,  /* a worker the manager forked in the constructor */
    FCGIPM_ADOPTED = 2, /* a worker exec'd by a manager in exec mode (the fcgi-pm program) */
    FCGIPM_FAILED = 3   /* the manager could not start: code and message say why */
};

struct fcgipm_start {
    int state;
    pm_t *pm;         /* the worker's handle (FCGIPM_WORKER, FCGIPM_ADOPTED) */
    int listen_fd;    /* the pool's listening socket in a worker */
    int code;         /* FCGIPM_FAILED: the PM_E* code, */
    int sys_errno;    /* the errno behind PM_ESYS, */
    char message[1024]; /* and the library's message */
};
extern struct fcgipm_start fcgipm_started;

/* The names of the two variables by which Serve hands the pool's start to the
 * constructor across its exec. */
#define FCGIPM_MANAGE_VARIABLE "FCGI_PM_GO_MANAGE"
#define FCGIPM_LISTEN_VARIABLE "FCGI_PM_GO_LISTEN_FD"

/* A request's two library calls, each with the stop check after it (one cgo call);
 * the first names the request for the live status (pm_set_request) from Go's
 * strings, copied as the library keeps them (cut to fit), with no allocation. */
int fcgipm_pre_dispatch(pm_t *pm, _GoString_ method, _GoString_ uri, _GoString_ remote, int *stopping);
int fcgipm_post_dispatch(pm_t *pm, int *stopping);
/* The worker's log lines to Go (Config.Log), or back to stderr. */
void fcgipm_log_to_go(pm_t *pm, int on);
void fcgipm_notify(pm_t *pm, const char *line);

#endif
