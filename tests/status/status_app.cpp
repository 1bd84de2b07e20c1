/*
 * status_app.cpp -- a libfcgi worker on this library for the status tests, run by the
 * fcgi-pm program (adopted in place: the socket on descriptor 0).
 *
 * Requests (the path of REQUEST_URI):
 *   /slow?ms=N   sleeps N ms, then answers
 *   /burn?ms=N   spins until it has used N ms of CPU time, then answers
 *   /crash       aborts mid-request (SIGABRT)
 *   /leak?kb=N   allocates N KB, touched and never freed (a worker that leaks)
 *   /stuck?ms=N  blocks TERM, then sleeps N ms (a request only KILL ends)
 *   /named?k=K   names itself with pm_set_request as method "M<K>", URI "/named?k=<K>"
 *                and remote "<K>": a reader that sees them disagree saw a torn view
 *   /corrupt     overwrites this worker's own scoreboard slot with garbage (a worker
 *                gone wrong: neither the manager nor a reader may suffer for it)
 *   anything     answers at once
 * Every answer's body is "pid <pid>\n". With STATUS_APP_FAIL=1 in the environment
 * each worker exits 1 at once instead (a program that cannot start: a crash loop);
 * with STATUS_APP_FAIL_IF=PATH, each worker started while PATH exists.
 * Run as its own manager (not by the fcgi-pm program): STATUS_APP_LISTEN=PATH makes
 * it listen on a unix socket at PATH (mode 0666) as descriptor 0, and
 * STATUS_APP_PARAMS="name=value ..." sets the library's parameters (bench/pool.sh's
 * pool of forked workers).
 */
#include <fcgiapp.h>
#include <signal.h>
#include <cstddef>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fcgi_pm_fcgx.h>

#include "scoreboard.h" /* the layout, for /corrupt */

/* Sleeps ms milliseconds whatever signals arrive meanwhile. */
static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0) {
    }
}

/* Spins until this thread has used ms milliseconds of CPU time. */
static void *volatile leaked; /* the /leak blocks, each holding the one before */

static long cpu_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}
static void burn_ms(long ms)
{
    long until = cpu_ms() + ms;
    while (cpu_ms() < until) {
    }
}

/* The scoreboard's mapping in this process, from /proc/self/maps. */
static int find_board(unsigned char **start, size_t *size)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    while (maps && !found && fgets(line, sizeof line, maps)) {
        unsigned long a, b;
        if (strstr(line, "memfd:fcgi-pm-scoreboard") && sscanf(line, "%lx-%lx", &a, &b) == 2) {
            *start = (unsigned char *)a;
            *size = b - a;
            found = 1;
        }
    }
    if (maps)
        fclose(maps);
    return found;
}

/* Garbage over this worker's own slot (found by its pid): every byte of its views
 * and counters, but not the control word of the stop protocol, nor the pid; then
 * both views' sequence counters even, so that readers take the garbage as written
 * (strings without an end, bytes of every kind, absurd counts and times). */
static int corrupt_own_slot(void)
{
    unsigned char *board;
    size_t size;
    if (!find_board(&board, &size))
        return 0;
    const size_t header = sizeof(fcgipm::board_header), slot = sizeof(fcgipm::worker_slot);
    const size_t pid_at = offsetof(fcgipm::worker_slot, pid);
    int32_t me = (int32_t)getpid();
    for (size_t off = header; off + slot <= size; off += slot) {
        int32_t pid;
        memcpy(&pid, board + off + pid_at, sizeof pid);
        if (pid != me)
            continue;
        for (size_t k = sizeof(uint32_t); k < slot; k++)
            if (k < pid_at || k >= pid_at + sizeof pid)
                board[off + k] = (unsigned char)(0xA5 ^ (k * 37));
        uint32_t even = 0x7fff0000;
        memcpy(board + off + offsetof(fcgipm::worker_slot, mseq), &even, sizeof even);
        memcpy(board + off + offsetof(fcgipm::worker_slot, wseq), &even, sizeof even);
        return 1;
    }
    return 0;
}

int main(void)
{
    if (FCGX_Init() != 0)
        return 1;
    if (const char *path = getenv("STATUS_APP_LISTEN")) {
        unlink(path);
        int fd = FCGX_OpenSocket(path, 1024);
        if (fd < 0 || chmod(path, 0666) != 0 || (fd != 0 && (dup2(fd, 0) != 0 || close(fd) != 0))) {
            fprintf(stderr, "status_app: %s: cannot listen\n", path);
            return 2;
        }
    }
    pm_t *pm = pm_create();
    if (const char *list = getenv("STATUS_APP_PARAMS")) {
        char copy[1024];
        snprintf(copy, sizeof copy, "%s", list);
        for (char *save = NULL, *item = strtok_r(copy, " ", &save); pm && item; item = strtok_r(NULL, " ", &save)) {
            char *eq = strchr(item, '=');
            if (!eq)
                continue;
            *eq = 0;
            if (pm_parameter(pm, item, eq + 1) < 0) {
                fprintf(stderr, "status_app: %s\n", pm_errmsg(pm));
                return 2;
            }
        }
    }
    if (!pm || pm_manage(pm) != PM_WORKER) {
        fprintf(stderr, "status_app: not a worker: %s\n", pm ? pm_errmsg(pm) : "out of memory");
        return 1;
    }
    const char *fail_if = getenv("STATUS_APP_FAIL_IF");
    if (getenv("STATUS_APP_FAIL") || (fail_if && access(fail_if, F_OK) == 0))
        return 1;
    FCGX_Request req;
    FCGX_InitRequest(&req, 0, 0);
    while (pm_fcgx_accept(pm, &req) >= 0) {
        const char *uri = FCGX_GetParam("REQUEST_URI", req.envp);
        uri = uri ? uri : "";
        if (strncmp(uri, "/named?k=", 9) == 0) {
            char method[16], remote[48];
            snprintf(method, sizeof method, "M%.10s", uri + 9);
            snprintf(remote, sizeof remote, "%.40s", uri + 9);
            pm_set_request(pm, method, uri, remote);
        }
        pm_pre_dispatch(pm);
        if (strncmp(uri, "/slow?ms=", 9) == 0)
            sleep_ms(atol(uri + 9));
        else if (strncmp(uri, "/burn?ms=", 9) == 0)
            burn_ms(atol(uri + 9));
        else if (strcmp(uri, "/crash") == 0)
            abort();
        else if (strncmp(uri, "/leak?kb=", 9) == 0) {
            size_t n = (size_t)atol(uri + 9) * 1024 + sizeof(void *);
            char *lost = (char *)malloc(n);
            if (lost) {
                memset(lost, 1, n);
                memcpy(lost, (const void *)&leaked, sizeof(void *)); /* chained: still reachable */
                leaked = lost;
            }
        } else if (strncmp(uri, "/stuck?ms=", 10) == 0) {
            sigset_t term;
            sigemptyset(&term);
            sigaddset(&term, SIGTERM);
            sigprocmask(SIG_BLOCK, &term, NULL);
            sleep_ms(atol(uri + 10));
        }
        int corrupted = strcmp(uri, "/corrupt") == 0 ? corrupt_own_slot() : -1;
        FCGX_FPrintF(req.out, "Content-Type: text/plain\r\n\r\npid %d\n", (int)getpid());
        if (corrupted >= 0)
            FCGX_FPrintF(req.out, "corrupted %d\n", corrupted);
        FCGX_Finish_r(&req);
        pm_post_dispatch(pm);
    }
    return 0;
}
