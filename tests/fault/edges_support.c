/*
 * edges_support.c -- see edges_support.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "edges_support.h"
#include "pool_fixture.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- files ---- */

int edges_write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

/* ---- /proc ---- */

/* Calls back for each socket:[N] descriptor of pid; stops when fn returns non-zero.
 * The return value of the last call, or 0. */
static int for_each_socket(pid_t pid, int (*fn)(unsigned long ino, void *ctx), void *ctx)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char link[64];
        ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        unsigned long ino;
        if (sscanf(link, "socket:[%lu]", &ino) == 1)
            rc = fn(ino, ctx);
    }
    closedir(d);
    return rc;
}

static int keep_first(unsigned long ino, void *ctx)
{
    *(unsigned long *)ctx = ino;
    return 1;
}

unsigned long edges_first_socket_inode(pid_t pid)
{
    unsigned long ino = 0;
    for_each_socket(pid, keep_first, &ino);
    return ino;
}

static int is_inode(unsigned long ino, void *ctx)
{
    return ino == *(unsigned long *)ctx;
}

int edges_holds_socket(pid_t pid, unsigned long ino)
{
    return for_each_socket(pid, is_inode, &ino);
}

static int count_one(unsigned long ino, void *ctx)
{
    (void)ino;
    ++*(int *)ctx;
    return 0;
}

int edges_socket_count(pid_t pid)
{
    int n = 0;
    for_each_socket(pid, count_one, &n);
    return n;
}

int edges_free_tcp_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int tcp_connect(int port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (errno != EINPROGRESS) {
            close(fd);
            return -1;
        }
        struct pollfd p = {fd, POLLOUT, 0};
        int err = 0;
        socklen_t len = sizeof err;
        if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ||
            err != 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

int edges_tcp_connect(int port)
{
    int fd = tcp_connect(port, 2000);
    if (fd >= 0)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

int edges_tcp_listening(int port)
{
    int fd = tcp_connect(port, 200);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

int edges_http_get(int port, const char *path, int timeout_ms, char **body)
{
    if (body)
        *body = NULL;
    double deadline = pf_now_ms() + timeout_ms;
    int fd = tcp_connect(port, timeout_ms);
    if (fd < 0)
        return -1;
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t cap = 4096, used = 0;
    char *buf = malloc(cap);
    for (;;) {
        int left = (int)(deadline - pf_now_ms());
        struct pollfd p = {fd, POLLIN, 0};
        if (!buf || left <= 0 || poll(&p, 1, left) != 1)
            break;
        if (used + 1024 >= cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger)
                break;
            buf = bigger;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + used, cap - used - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (got == 0)
                deadline = -1; /* complete */
            break;
        }
        used += (size_t)got;
    }
    close(fd);
    int status = -1;
    if (buf) {
        buf[used] = '\0';
        int major, minor, code;
        if (deadline < 0 && sscanf(buf, "HTTP/%d.%d %d", &major, &minor, &code) == 3)
            status = code;
        const char *sep = strstr(buf, "\r\n\r\n");
        if (body && sep)
            *body = strdup(sep + 4);
        free(buf);
    }
    return status;
}

/* ---- a raw FastCGI client ---- */

int edges_unix_connect(const char *path)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof a.sun_path)
        return -1;
    strcpy(a.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Appends one record (version 1, request id 1, padded to 8) to buf at *n. */
static void fcgi_record(unsigned char *buf, size_t *n, int type, const void *content, size_t len)
{
    size_t pad = (8 - len % 8) % 8;
    unsigned char *h = buf + *n;
    h[0] = 1;
    h[1] = (unsigned char)type;
    h[2] = 0;
    h[3] = 1;
    h[4] = (unsigned char)(len >> 8);
    h[5] = (unsigned char)(len & 0xff);
    h[6] = (unsigned char)pad;
    h[7] = 0;
    if (len)
        memcpy(h + 8, content, len);
    memset(h + 8 + len, 0, pad);
    *n += 8 + len + pad;
}

/* Appends a name-value pair (both shorter than 128 bytes). */
static void fcgi_pair(unsigned char *buf, size_t *n, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    buf[(*n)++] = (unsigned char)nl;
    buf[(*n)++] = (unsigned char)vl;
    memcpy(buf + *n, name, nl);
    *n += nl;
    memcpy(buf + *n, value, vl);
    *n += vl;
}

int edges_fcgi_send(int fd, const char *query)
{
    return edges_fcgi_send_request(fd, query, 0);
}

int edges_fcgi_send_request(int fd, const char *query, int keep_conn)
{
    if (strlen(query) > 100) {
        errno = EINVAL;
        return -1;
    }
    const unsigned char begin[8] = {0, 1 /* responder */, keep_conn ? 1 /* FCGI_KEEP_CONN */ : 0};
    unsigned char params[512], msg[1024];
    size_t np = 0, n = 0;
    fcgi_pair(params, &np, "REQUEST_METHOD", "GET");
    fcgi_pair(params, &np, "QUERY_STRING", query);
    fcgi_pair(params, &np, "SCRIPT_NAME", "/test");
    fcgi_pair(params, &np, "SERVER_PROTOCOL", "HTTP/1.1");
    fcgi_pair(params, &np, "GATEWAY_INTERFACE", "CGI/1.1");
    fcgi_record(msg, &n, 1 /* BEGIN_REQUEST */, begin, sizeof begin);
    fcgi_record(msg, &n, 4 /* PARAMS */, params, np);
    fcgi_record(msg, &n, 4, NULL, 0);
    fcgi_record(msg, &n, 5 /* STDIN */, NULL, 0);
    size_t done = 0;
    while (done < n) {
        ssize_t w = send(fd, msg + done, n - done, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        done += (size_t)w;
    }
    return 0;
}

/* Reads exactly len bytes before the deadline: 1, 0 on EOF, -1 on error or timeout. */
static int read_full(int fd, unsigned char *buf, size_t len, double deadline)
{
    size_t got = 0;
    while (got < len) {
        int left = (int)(deadline - pf_now_ms());
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) != 1) {
            errno = ETIMEDOUT;
            return -1;
        }
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        got += (size_t)r;
    }
    return 1;
}

int edges_fcgi_receive(int fd, int timeout_ms, char **out, size_t *len)
{
    double deadline = pf_now_ms() + timeout_ms;
    size_t cap = 4096, used = 0;
    char *text = malloc(cap);
    int rc = 0;
    unsigned char h[8], content[65536 + 256];
    while (text) {
        int r = read_full(fd, h, 8, deadline);
        if (r <= 0) {
            rc = r;
            break;
        }
        size_t clen = ((size_t)h[4] << 8) | h[5], total = clen + h[6];
        r = read_full(fd, content, total, deadline);
        if (r <= 0) {
            rc = r < 0 ? -1 : 0;
            break;
        }
        if (h[1] == 3 /* END_REQUEST */) {
            rc = 1;
            break;
        }
        if (h[1] == 6 /* STDOUT */) {
            while (used + clen + 1 > cap) {
                char *bigger = realloc(text, cap * 2);
                if (!bigger)
                    break;
                text = bigger;
                cap *= 2;
            }
            if (used + clen + 1 <= cap) {
                memcpy(text + used, content, clen);
                used += clen;
            }
        }
    }
    if (text)
        text[used] = '\0';
    *out = text;
    if (len)
        *len = used;
    return rc;
}

/* ---- nginx ---- */

static int write_nginx_conf(const edges_nginx_t *ng, const char *upstream, const char *conf)
{
    FILE *f = fopen(conf, "w");
    if (!f)
        return -1;
    /* As root, nginx would hand its workers to nobody, who cannot reach the 0700
     * temp dirs. */
    if (geteuid() == 0)
        fprintf(f, "user root root;\n");
    fprintf(f,
            "daemon off;\n"
            "master_process on;\n"
            "worker_processes 1;\n"
            "pid %s/nginx.pid;\n"
            "error_log %s warn;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            "  access_log off;\n"
            "  client_body_temp_path %s/client_body;\n"
            "  proxy_temp_path %s/proxy;\n"
            "  fastcgi_temp_path %s/fastcgi;\n"
            "  uwsgi_temp_path %s/uwsgi;\n"
            "  scgi_temp_path %s/scgi;\n"
            "  server {\n"
            "    listen 127.0.0.1:%d;\n"
            "    location / {\n"
            "      fastcgi_pass %s;\n"
            "      fastcgi_param QUERY_STRING $query_string;\n"
            "      fastcgi_param REQUEST_METHOD $request_method;\n"
            "      fastcgi_param CONTENT_TYPE $content_type;\n"
            "      fastcgi_param CONTENT_LENGTH $content_length;\n"
            "      fastcgi_param SCRIPT_NAME $fastcgi_script_name;\n"
            "      fastcgi_param SCRIPT_FILENAME /test;\n"
            "      fastcgi_param REQUEST_URI $request_uri;\n"
            "      fastcgi_param SERVER_PROTOCOL $server_protocol;\n"
            "      fastcgi_param GATEWAY_INTERFACE CGI/1.1;\n"
            "      fastcgi_param REMOTE_ADDR $remote_addr;\n"
            "      fastcgi_param SERVER_NAME $server_name;\n"
            "      fastcgi_param SERVER_PORT $server_port;\n"
            "    }\n"
            "  }\n"
            "}\n",
            ng->dir, ng->error_log, ng->dir, ng->dir, ng->dir, ng->dir, ng->dir, ng->port,
            upstream);
    return fclose(f) == 0 ? 0 : -1;
}

int edges_nginx_start(edges_nginx_t *ng, const char *nginx, const char *dir,
                      const char *upstream)
{
    memset(ng, 0, sizeof *ng);
    ng->pid = -1;
    snprintf(ng->dir, sizeof ng->dir, "%s", dir);
    snprintf(ng->error_log, sizeof ng->error_log, "%s/error.log", dir);
    snprintf(ng->out_log, sizeof ng->out_log, "%s/nginx.out", dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -1;
    char conf[PU_PATH_MAX + 32];
    snprintf(conf, sizeof conf, "%s/nginx.conf", dir);
    /* A port found free may be taken before nginx binds it: try a few. */
    for (int attempt = 0; attempt < 5; attempt++) {
        ng->port = edges_free_tcp_port();
        if (ng->port <= 0 || write_nginx_conf(ng, upstream, conf) < 0)
            return -1;
        char prefix[PU_PATH_MAX + 2];
        snprintf(prefix, sizeof prefix, "%s/", dir);
        const char *argv[] = {nginx, "-p", prefix, "-c", conf, "-e", ng->error_log, NULL};
        ng->pid = pu_spawn(argv, NULL, ng->out_log);
        if (ng->pid < 0)
            return -1;
        double deadline = pf_now_ms() + 5000;
        while (pf_now_ms() < deadline) {
            if (edges_tcp_listening(ng->port))
                return 0;
            int status;
            if (waitpid(ng->pid, &status, WNOHANG) == ng->pid) {
                ng->pid = -1;
                break; /* exited: maybe the port was taken; try another */
            }
            pu_sleep_ms(5);
        }
        if (ng->pid > 0) {
            edges_nginx_stop(ng);
            return -1;
        }
    }
    return -1;
}

void edges_nginx_stop(edges_nginx_t *ng)
{
    if (ng->pid <= 0)
        return;
    kill(ng->pid, SIGQUIT);
    if (!pu_wait_exit(ng->pid, 3000, NULL))
        pu_kill_tree(ng->pid);
    ng->pid = -1;
}

/* ---- wrk ---- */

int edges_parse_wrk(const char *text, edges_wrk_t *w)
{
    memset(w, 0, sizeof *w);
    if (!text)
        return -1;
    const char *p = strstr(text, " requests in ");
    if (p) {
        const char *start = p;
        while (start > text && start[-1] != '\n')
            start--;
        if (sscanf(start, " %ld requests in %lfs", &w->requests, &w->seconds) >= 1)
            w->parsed = 1;
    }
    p = strstr(text, "Socket errors:");
    if (p) {
        w->socket_errors_line = 1;
        sscanf(p, "Socket errors: connect %ld, read %ld, write %ld, timeout %ld",
               &w->connect_errors, &w->read_errors, &w->write_errors, &w->timeouts);
    }
    p = strstr(text, "Non-2xx or 3xx responses:");
    if (p) {
        w->non2xx_line = 1;
        sscanf(p, "Non-2xx or 3xx responses: %ld", &w->non2xx);
    }
    p = strstr(text, "Requests/sec:");
    if (p)
        sscanf(p, "Requests/sec: %lf", &w->requests_per_s);
    return w->parsed ? 0 : -1;
}
