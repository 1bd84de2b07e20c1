/*
 * edges_support.h -- helpers for the programs of the pool's edges (docs/reliability.md R3,
 * R9, R10, R11): socket inodes in /proc, free TCP ports, a throw-away nginx in front
 * of a pool, a minimal HTTP client, a raw FastCGI client, and a parser for wrk's
 * report.
 *
 * Builds on proc_util.h and pool_fixture.h's clock; like proc_util, nothing here fails
 * a test by itself.
 */
#ifndef EDGES_SUPPORT_H
#define EDGES_SUPPORT_H

#include <stddef.h>
#include <sys/types.h>

#include "proc_util.h"

/* ---- files ---- */

/* Writes text to path (created or truncated, mode 0644). 0 or -1. */
int edges_write_file(const char *path, const char *text);

/* ---- processes and sockets in /proc ---- */

/* The inode of the only listening-socket-looking descriptor (socket:[N]) of pid, the
 * first one found. 0 if none. */
unsigned long edges_first_socket_inode(pid_t pid);
/* 1 if pid has a descriptor on socket inode ino, 0 if not (or pid is gone). */
int edges_holds_socket(pid_t pid, unsigned long ino);
/* Number of socket descriptors of pid (0 if it is gone). */
int edges_socket_count(pid_t pid);

/* A TCP port on 127.0.0.1 that nothing listens on right now, or -1. */
int edges_free_tcp_port(void);
/* 1 if something accepts TCP connections on 127.0.0.1:port. */
int edges_tcp_listening(int port);

/* GET path over HTTP/1.0 from 127.0.0.1:port: the status code (e.g. 200), or -1 on
 * any failure. The body (malloc'd, NUL-terminated) in *body if body is non-NULL. */
int edges_http_get(int port, const char *path, int timeout_ms, char **body);

/* ---- a raw FastCGI client ---- */

/* A connected stream to the unix socket path, or -1. */
int edges_unix_connect(const char *path);
/* A connected (blocking) stream to 127.0.0.1:port, or -1. */
int edges_tcp_connect(int port);
/* Sends one whole responder request (GET, QUERY_STRING=query, empty stdin) on fd,
 * request id 1. 0, or -1 (errno set: EPIPE if the peer dropped the connection). */
int edges_fcgi_send(int fd, const char *query);
/* The same, with FCGI_KEEP_CONN set when keep_conn: the worker keeps the connection. */
int edges_fcgi_send_request(int fd, const char *query, int keep_conn);
/* Reads records from fd until END_REQUEST, EOF, an error or timeout_ms: the STDOUT
 * content (malloc'd, NUL-terminated) in *out. 1 if END_REQUEST came, 0 if not, -1 on
 * a read error (errno set). */
int edges_fcgi_receive(int fd, int timeout_ms, char **out, size_t *len);

/* ---- nginx ---- */

typedef struct edges_nginx {
    pid_t pid;
    int port;
    char dir[PU_PATH_MAX];            /* its prefix: config, pid, logs, temp paths */
    char error_log[PU_PATH_MAX + 32];
    char out_log[PU_PATH_MAX + 32];   /* nginx's own stdout/stderr */
} edges_nginx_t;

/* Starts nginx (the binary at path nginx) in the foreground (daemon off) with a config
 * of its own under dir (created; everything nginx writes stays there), listening on
 * 127.0.0.1 on a free port and passing every request to the FastCGI upstream, as
 * fastcgi_pass takes it ("unix:/path" or "127.0.0.1:port"). Waits until it accepts
 * connections. 0, or -1 (details in ng->out_log). */
int edges_nginx_start(edges_nginx_t *ng, const char *nginx, const char *dir,
                      const char *upstream);
/* QUIT (graceful), then KILL if needed; reaps it. */
void edges_nginx_stop(edges_nginx_t *ng);

/* ---- wrk ---- */

typedef struct edges_wrk {
    int parsed;              /* the "requests in" line was found */
    long requests;           /* completed requests */
    double seconds;          /* the test's duration as wrk reports it */
    int socket_errors_line;  /* a "Socket errors:" line is present */
    long connect_errors, read_errors, write_errors, timeouts;
    int non2xx_line;         /* a "Non-2xx or 3xx responses:" line is present */
    long non2xx;
    double requests_per_s;
} edges_wrk_t;

/* Parses wrk's report. 0 if the request count was found, else -1. */
int edges_parse_wrk(const char *text, edges_wrk_t *w);

#endif /* EDGES_SUPPORT_H */
