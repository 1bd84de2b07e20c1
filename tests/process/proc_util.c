/*
 * proc_util.c -- see proc_util.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "proc_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The FastCGI client; the build passes its full path. */
#ifndef CGI_FCGI
#define CGI_FCGI "cgi-fcgi"
#endif

#define POLL_MS 2

/* ---- time and files ---- */

long long pu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pu_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

int pu_make_temp_dir(char *dir, size_t size, const char *tag)
{
    int n = snprintf(dir, size, "/tmp/fcgi-pm-%s-XXXXXX", tag);
    if (n < 0 || (size_t)n >= size)
        return -1;
    return mkdtemp(dir) ? 0 : -1;
}

void pu_remove_temp_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                unlinkat(dirfd(d), e->d_name, 0);
        }
        closedir(d);
    }
    rmdir(dir);
}

char *pu_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, used = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (used + 1 >= cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + used, cap - used - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            free(buf);
            buf = NULL;
            break;
        }
        if (got == 0)
            break;
        used += (size_t)got;
    }
    close(fd);
    if (buf) {
        buf[used] = '\0';
        if (len)
            *len = used;
    }
    return buf;
}

int pu_file_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* ---- processes ---- */

/* In a forked child: stdin from /dev/null, stdout to out_path, stderr to err_path
 * (append when append is set), default signal mask. Exits 127 on failure. */
static void child_redirect(const char *out_path, const char *err_path, int append)
{
    /* close-on-exec: only the dup2'd copies 0-2 reach the program */
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int out = open(out_path, flags, 0644);
    int err = strcmp(out_path, err_path) == 0 ? out : open(err_path, flags, 0644);
    if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
        dup2(err, 2) < 0)
        _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

pid_t pu_spawn(const char *const argv[], const char *const env_extra[], const char *log_path)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    child_redirect(log_path, log_path, 1);
    for (size_t i = 0; env_extra && env_extra[i]; i++)
        putenv((char *)env_extra[i]);
    execv(argv[0], (char *const *)argv);
    dprintf(2, "pu_spawn: exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int pu_wait_exit(pid_t pid, int timeout_ms, int *status)
{
    long long deadline = pu_now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t got = waitpid(pid, &st, WNOHANG);
        if (got == pid) {
            if (status)
                *status = st;
            return 1;
        }
        if (got < 0 && errno != EINTR)
            return 0;
        if (pu_now_ms() >= deadline)
            return 0;
        pu_sleep_ms(POLL_MS);
    }
}

/* Appends pid's descendants (depth first) to list. */
static void collect_descendants(pid_t pid, pid_t *list, int *n, int max)
{
    pid_t kids[PU_MAX_PIDS];
    int count = pu_children(pid, kids, PU_MAX_PIDS);
    for (int i = 0; i < count && *n < max; i++) {
        list[(*n)++] = kids[i];
        collect_descendants(kids[i], list, n, max);
    }
}

void pu_kill_tree(pid_t pid)
{
    if (pid <= 0)
        return;
    pid_t list[4 * PU_MAX_PIDS];
    int n = 0;
    list[n++] = pid;
    collect_descendants(pid, list, &n, 4 * PU_MAX_PIDS);
    for (int i = 0; i < n; i++)
        kill(list[i], SIGKILL);
    /* The pid and any orphans (we are their subreaper) are ours to reap. */
    long long deadline = pu_now_ms() + 2000;
    for (;;) {
        int left = 0;
        pu_reap_any();
        for (int i = 0; i < n; i++)
            left += pu_exists(list[i]) && pu_proc_state(list[i]) != 'Z';
        if (!left || pu_now_ms() >= deadline)
            break;
        pu_sleep_ms(POLL_MS);
    }
    pu_reap_any();
}

void pu_kill_children(void)
{
    pid_t kids[PU_MAX_PIDS];
    int n = pu_children(getpid(), kids, PU_MAX_PIDS);
    for (int i = 0; i < n; i++)
        pu_kill_tree(kids[i]);
    pu_reap_any();
}

void pu_reap_any(void)
{
    int st;
    while (waitpid(-1, &st, WNOHANG) > 0) {
    }
}

int pu_children(pid_t pid, pid_t *out, int max)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    char *text = pu_read_file(path, NULL);
    if (!text)
        return -1;
    int n = pu_parse_pid_list(text, out, max);
    free(text);
    return n;
}

char pu_proc_state(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *text = pu_read_file(path, NULL);
    if (!text)
        return 0;
    /* "pid (comm) S ...": comm may hold spaces and parentheses, so look for the last ')'. */
    char *paren = strrchr(text, ')');
    char state = paren && paren[1] == ' ' ? paren[2] : 0;
    free(text);
    return state;
}

int pu_alive(pid_t pid)
{
    char state = pu_proc_state(pid);
    return state != 0 && state != 'Z' && state != 'X';
}

int pu_exists(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d", (int)pid);
    return pu_file_exists(path);
}

int pu_cmdline(pid_t pid, char *buf, size_t size)
{
    char path[64];
    size_t len;
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    char *text = pu_read_file(path, &len);
    if (!text)
        return -1;
    snprintf(buf, size, "%s", text); /* stops at the first NUL */
    free(text);
    return 0;
}

int pu_comm(pid_t pid, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    char *text = pu_read_file(path, NULL);
    if (!text)
        return -1;
    text[strcspn(text, "\n")] = '\0';
    snprintf(buf, size, "%s", text);
    free(text);
    return 0;
}

/* ---- log files ---- */

/* Calls fn on each complete line of path (without its newline); stops early when fn
 * returns non-zero. */
typedef int (*line_fn)(const char *line, void *ctx);

static void for_each_line(const char *path, line_fn fn, void *ctx)
{
    char *text = pu_read_file(path, NULL);
    if (!text)
        return;
    char *line = text;
    while (*line) {
        char *end = strchr(line, '\n');
        if (!end)
            break; /* a line still being written does not count yet */
        *end = '\0';
        if (fn(line, ctx))
            break;
        line = end + 1;
    }
    free(text);
}

struct match_ctx {
    const char *text;
    int count;
};

static int count_equal(const char *line, void *ctx)
{
    struct match_ctx *m = ctx;
    m->count += strcmp(line, m->text) == 0;
    return 0;
}

static int count_containing(const char *line, void *ctx)
{
    struct match_ctx *m = ctx;
    m->count += strstr(line, m->text) != NULL;
    return 0;
}

int pu_count_lines(const char *path, const char *line)
{
    struct match_ctx m = {line, 0};
    for_each_line(path, count_equal, &m);
    return m.count;
}

int pu_sanitizer_reports(const char *path)
{
    return pu_count_containing(path, "Sanitizer") + pu_count_containing(path, "runtime error:");
}

int pu_count_containing(const char *path, const char *needle)
{
    struct match_ctx m = {needle, 0};
    for_each_line(path, count_containing, &m);
    return m.count;
}

static int wait_count(int (*counter)(const char *, const char *), const char *path,
                      const char *text, int count, int timeout_ms)
{
    long long deadline = pu_now_ms() + timeout_ms;
    for (;;) {
        if (counter(path, text) >= count)
            return 1;
        if (pu_now_ms() >= deadline)
            return 0;
        pu_sleep_ms(POLL_MS);
    }
}

int pu_wait_line(const char *path, const char *line, int count, int timeout_ms)
{
    return wait_count(pu_count_lines, path, line, count, timeout_ms);
}

int pu_wait_containing(const char *path, const char *needle, int count, int timeout_ms)
{
    return wait_count(pu_count_containing, path, needle, count, timeout_ms);
}

struct prefix_ctx {
    const char *prefix;
    char **lines;
    int count, max;
};

static int keep_prefixed(const char *line, void *ctx)
{
    struct prefix_ctx *p = ctx;
    if (strncmp(line, p->prefix, strlen(p->prefix)) != 0)
        return 0;
    p->lines[p->count] = strdup(line);
    if (p->lines[p->count])
        p->count++;
    return p->count >= p->max;
}

int pu_lines_with_prefix(const char *path, const char *prefix, char **lines, int max)
{
    struct prefix_ctx p = {prefix, lines, 0, max};
    if (max > 0)
        for_each_line(path, keep_prefixed, &p);
    return p.count;
}

void pu_free_lines(char **lines, int count)
{
    for (int i = 0; i < count; i++)
        free(lines[i]);
}

struct pid_ctx {
    const char *before, *after;
    pid_t *out;
    int count, max;
};

static int keep_pid(const char *line, void *ctx)
{
    struct pid_ctx *p = ctx;
    size_t blen = strlen(p->before);
    if (strncmp(line, p->before, blen) != 0)
        return 0;
    const char *digits = line + blen, *end = digits;
    while (*end >= '0' && *end <= '9')
        end++;
    if (end == digits || end - digits > 9 || strcmp(end, p->after) != 0)
        return 0;
    p->out[p->count++] = (pid_t)atoi(digits);
    return p->count >= p->max;
}

int pu_collect_pids(const char *path, const char *before, const char *after, pid_t *out,
                    int max)
{
    struct pid_ctx p = {before, after, out, 0, max};
    if (max > 0)
        for_each_line(path, keep_pid, &p);
    return p.count;
}

int pu_parse_pid_list(const char *text, pid_t *out, int max)
{
    int n = 0;
    const char *s = text;
    for (;;) {
        while (*s == ' ' || *s == '\n')
            s++;
        if (*s == '\0')
            return n;
        if (*s < '0' || *s > '9' || n >= max)
            return -1;
        char *end;
        long v = strtol(s, &end, 10);
        out[n++] = (pid_t)v;
        s = end;
    }
}

int pu_has_pid(const pid_t *list, int n, pid_t pid)
{
    for (int i = 0; i < n; i++)
        if (list[i] == pid)
            return 1;
    return 0;
}

int pu_same_pids(const pid_t *a, int na, const pid_t *b, int nb)
{
    if (na != nb)
        return 0;
    for (int i = 0; i < na; i++) {
        if (!pu_has_pid(b, nb, a[i]) || pu_has_pid(a + i + 1, na - i - 1, a[i]))
            return 0;
    }
    return 1;
}

/* ---- FastCGI requests ---- */

int pu_request_start(pu_request_t *req, const char *sock, const char *query,
                     const char *out_path)
{
    char err_path[PU_PATH_MAX + 8];
    snprintf(req->out_path, sizeof req->out_path, "%s", out_path);
    snprintf(err_path, sizeof err_path, "%s.err", out_path);

    char query_var[1024];
    snprintf(query_var, sizeof query_var, "QUERY_STRING=%s", query);
    char *const env[] = {
        "REQUEST_METHOD=GET",     query_var,
        "SCRIPT_FILENAME=/test",  "SCRIPT_NAME=/test",
        "REQUEST_URI=/test",      "SERVER_PROTOCOL=HTTP/1.1",
        "GATEWAY_INTERFACE=CGI/1.1", "SERVER_NAME=localhost",
        "CONTENT_LENGTH=0",       NULL};
    char *const argv[] = {(char *)CGI_FCGI, "-bind", "-connect", (char *)sock, NULL};

    req->pid = fork();
    if (req->pid < 0)
        return -1;
    if (req->pid == 0) {
        child_redirect(out_path, err_path, 0);
        execvpe(argv[0], argv, env);
        dprintf(2, "pu_request_start: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return 0;
}

int pu_request_finish(pu_request_t *req, int timeout_ms, char **out, size_t *len)
{
    int status = 0;
    int exited = pu_wait_exit(req->pid, timeout_ms, &status);
    if (!exited) {
        kill(req->pid, SIGKILL);
        waitpid(req->pid, &status, 0);
    }
    size_t got = 0;
    char *text = pu_read_file(req->out_path, &got);
    if (out)
        *out = text;
    else
        free(text);
    if (len)
        *len = text ? got : 0;
    if (!exited || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

int pu_request(const char *sock, const char *query, const char *out_path, int timeout_ms,
               char **out, size_t *len)
{
    pu_request_t req;
    if (pu_request_start(&req, sock, query, out_path) < 0)
        return -1;
    return pu_request_finish(&req, timeout_ms, out, len);
}

const char *pu_response_body(const char *response, size_t len, size_t *body_len)
{
    if (!response)
        return NULL;
    const char *sep = memmem(response, len, "\r\n\r\n", 4);
    if (!sep)
        return NULL;
    const char *body = sep + 4;
    *body_len = len - (size_t)(body - response);
    return body;
}

pid_t pu_response_pid(const char *response)
{
    static const char header[] = "X-Worker-Pid: ";
    const char *h = response ? strstr(response, header) : NULL;
    return h ? (pid_t)atoi(h + sizeof header - 1) : -1;
}

int pu_body_is_pattern(const char *body, size_t body_len, size_t n)
{
    if (!body || body_len != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (body[i] != pu_pattern_byte(i))
            return 0;
    return 1;
}
