/*
 * hello.c -- a complete FastCGI responder on libfcgi, managed by fcgi-pm.
 *
 * Usage: hello [SOCKET [N_PROCESSES]]
 *   SOCKET       a unix socket path, or ":PORT" for TCP (default: the listening
 *                socket on descriptor 0 if there is one, else ":9000")
 *   N_PROCESSES  how many workers to keep alive (default 2)
 *
 * Run by the fcgi-pm program (fcgi-pm -s /tmp/hello.sock -F 4 -- ./hello), it
 * serves the socket on descriptor 0, and pm_manage makes it one of fcgi-pm's
 * workers instead of a manager of its own.
 *
 * Try it:
 *   ./hello /tmp/hello.sock 2 &
 *   REQUEST_METHOD=GET SCRIPT_FILENAME=/hello cgi-fcgi -bind -connect /tmp/hello.sock
 *   kill -HUP <manager pid>    # replace every worker
 *   kill -TERM <manager pid>   # stop: requests in progress finish first
 */
#include <fcgiapp.h>
#include <stdio.h>
#include <unistd.h>

#include <fcgi_pm_fcgx.h>

int main(int argc, char **argv)
{
    const char *address = argc > 1 ? argv[1] : NULL;
    const char *n_processes = argc > 2 ? argv[2] : "2";

    if (FCGX_Init() != 0) {
        fprintf(stderr, "hello: FCGX_Init failed\n");
        return 1;
    }
    /* The listening socket exists before pm_manage: every worker inherits it. */
    int sock;
    if (address) {
        sock = FCGX_OpenSocket(address, 128);
    } else if (!FCGX_IsCGI()) { /* FastCGI's convention: a listening socket on fd 0 */
        address = "descriptor 0";
        sock = 0;
    } else {
        sock = FCGX_OpenSocket(address = ":9000", 128);
    }
    if (sock < 0) {
        fprintf(stderr, "hello: cannot listen on %s\n", address);
        return 1;
    }

    pm_t *pm = pm_create();
    if (!pm) {
        fprintf(stderr, "hello: out of memory\n");
        return 1;
    }
    if (pm_parameter(pm, "n_processes", n_processes) != 0) {
        fprintf(stderr, "hello: n_processes: %s\n", pm_errmsg(pm));
        pm_destroy(pm);
        return 1;
    }
    /* hello has nothing to clean up at exit (no atexit handlers, no files to
     * finish) and nothing in stdio's buffers in a worker (its answers go through
     * libfcgi's streams): a worker the library ends calls _exit(2) at once, and an
     * idle worker told to stop ends inside pm_fcgx_accept. */
    pm_parameter(pm, "worker_exit", "_exit_unflushed");
    /* The manager stays inside pm_manage until it is told to stop (it exits there);
     * each worker gets 1 back and goes on below. With n_processes 0 it returns 0 and
     * this process serves the requests itself. */
    if (pm_manage(pm) < 0) {
        fprintf(stderr, "hello: %s\n", pm_errmsg(pm));
        pm_destroy(pm);
        return 1;
    }

    /* pm_fcgx_accept is FCGX_Accept_r made safe for reloads (fcgi_pm_fcgx.h). After
     * a TERM or HUP an idle worker exits in it at once ("worker_exit"; on a
     * TCP socket libfcgi's accept fails instead, which ends the loop); a request in
     * progress is never disturbed. */
    FCGX_Request req;
    FCGX_InitRequest(&req, sock, 0);
    while (pm_fcgx_accept(pm, &req) >= 0) {
        pm_pre_dispatch(pm);
        FCGX_FPrintF(req.out, "Content-Type: text/plain\r\n\r\nHello from worker %d\n",
                     (int)getpid());
        FCGX_Finish_r(&req);  /* the response is complete before we may exit */
        pm_post_dispatch(pm); /* exits here after TERM/HUP, max_requests, or the
                                 manager's death */
    }
    pm_destroy(pm);
    return 0;
}
