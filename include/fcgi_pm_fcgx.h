/*
 * fcgi_pm_fcgx.h -- the accept loop of a libfcgi worker under fcgi-pm.
 *
 *     FCGX_Request req;
 *     FCGX_InitRequest(&req, sock, 0);
 *     while (pm_fcgx_accept(pm, &req) >= 0) {
 *         pm_pre_dispatch(pm);
 *         ... answer on req.out ...
 *         FCGX_Finish_r(&req);
 *         pm_post_dispatch(pm);
 *     }
 *
 * Why not FCGX_Accept_r alone: on a unix socket, libfcgi's accept waits up to 2 s
 * for the connection's first bytes in a select(2), and closes the connection if
 * that select fails. A TERM or HUP arriving in that instant (a reload under load)
 * makes it fail with EINTR, whatever SA_RESTART says, and the request is lost.
 * pm_fcgx_accept accepts unix-socket connections itself (pm_accept) and hands them
 * to FCGX_Accept_r as an open connection. TCP sockets take libfcgi's own path, which
 * has no such wait and applies FCGI_WEB_SERVER_ADDRS. A connection the web server
 * keeps alive (FCGI_KEEP_CONN, nginx's fastcgi_keep_conn) is waited on with
 * pm_wait_connection, so that an idle worker holding one still stops at once.
 * Each request's method, URI and client address go to the live status
 * (pm_set_request_params).
 *
 * Header only: it needs libfcgi (fcgiapp.h) but adds no dependency to libfcgi-pm.
 */
#ifndef FCGI_PM_FCGX_H
#define FCGI_PM_FCGX_H

#include <fcgiapp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fcgi_pm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* As pm_fcgx_accept, telling whose failure a negative return is: *fcgx_rc is
 * FCGX_Accept_r's own return value when libfcgi failed (a negative errno, or one of
 * libfcgi's FCGX_* codes), else 0 (the library's: a PM_E* code, pm_errmsg tells it).
 * The two ranges overlap; a binding that maps errors needs to know. */
static inline int pm_fcgx_accept_r(pm_t *pm, FCGX_Request *req, int *fcgx_rc)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    *fcgx_rc = 0;
    FCGX_Finish_r(req); /* as FCGX_Accept_r does first: ends the previous request */
    if (req->ipcFd >= 0) { /* kept alive: its next request, unless the worker must stop */
        int rc = pm_wait_connection(pm, req->ipcFd);
        if (rc < 0) {
            /* closed at once: libfcgi's own close lingers up to 2 s for the peer */
            close(req->ipcFd);
            req->ipcFd = -1;
            return rc;
        }
    } else if (getsockname(req->listen_sock, (struct sockaddr *)&addr, &len) != 0 ||
               addr.ss_family == AF_UNIX) {
        /* a unix socket, or none any more (a stopping worker's is under /dev/null) */
        int fd = pm_accept(pm, req->listen_sock);
        if (fd < 0)
            return fd;
        req->ipcFd = fd;
        req->keepConnection = 1; /* FCGX_Accept_r's own FCGX_Finish_r keeps it open */
    }
    int rc = FCGX_Accept_r(req);
    if (rc < 0) {
        *fcgx_rc = rc;
        pm_worker_stopping(pm); /* a stop ended libfcgi's accept: "worker_exit" applies */
    } else {
        pm_set_request_params(pm, req->envp); /* method, URI, client: for the live status */
    }
    return rc;
}

/* As FCGX_Accept_r: >= 0 with the next request in req, < 0 when the loop must end
 * (the worker is stopping, or an error). */
static inline int pm_fcgx_accept(pm_t *pm, FCGX_Request *req)
{
    int fcgx_rc;
    return pm_fcgx_accept_r(pm, req, &fcgx_rc);
}

#ifdef __cplusplus
}
#endif
#endif /* FCGI_PM_FCGX_H */
