/*
 * proc_util.h -- helpers for tests that run fcgi-pm applications as real processes:
 * spawn a program with its output in a log file, wait for log lines, look at /proc,
 * and run FastCGI requests through the real client (cgi-fcgi).
 *
 * Times are in milliseconds. Waiting functions poll with short sleeps and give up at
 * their timeout; they never fail the test themselves, the caller asserts.
 */
#ifndef PROC_UTIL_H
#define PROC_UTIL_H

#include <stddef.h>
#include <sys/types.h>

#define PU_PATH_MAX 256
#define PU_MAX_PIDS 64

/* Byte i of the deterministic body a worker sends for "body=N". */
static inline char pu_pattern_byte(size_t i)
{
    return (char)('!' + (int)(i % 89)); /* printable; 89 is prime, so no buffer-sized period */
}

/* ---- time and files ---- */

long long pu_now_ms(void);
void pu_sleep_ms(int ms);

/* Creates a fresh directory /tmp/fcgi-pm-<tag>-XXXXXX into dir. 0 or -1. */
int pu_make_temp_dir(char *dir, size_t size, const char *tag);
/* Removes the files directly inside dir, then dir itself. */
void pu_remove_temp_dir(const char *dir);

/* The whole file, NUL-terminated, malloc'd (free it); *len without the NUL if len is
 * non-NULL. NULL if it cannot be read. */
char *pu_read_file(const char *path, size_t *len);
int pu_file_exists(const char *path);

/* ---- processes ---- */

/* Forks and execs argv[0] (a path) with argv, stdin from /dev/null, stdout and stderr
 * appended to log_path. env_extra is a NULL-terminated list of "NAME=value" added to
 * the environment (may be NULL). The pid, or -1. */
pid_t pu_spawn(const char *const argv[], const char *const env_extra[], const char *log_path);

/* Waits up to timeout_ms for the child pid to exit and reaps it: 1 (status set), or 0
 * if it is still running. */
int pu_wait_exit(pid_t pid, int timeout_ms, int *status);

/* Kills pid and all its descendants with SIGKILL and reaps those that are our
 * children. Used for clean-up; safe on a pid that is already gone. */
void pu_kill_tree(pid_t pid);

/* Kills every child of this process, with its descendants, and reaps them: what a
 * test left running (managers, workers, orphans, clients). */
void pu_kill_children(void);

/* Reaps every exited child of this process without blocking. */
void pu_reap_any(void);

/* The children of pid (/proc/PID/task/PID/children), at most max. Count, or -1. */
int pu_children(pid_t pid, pid_t *out, int max);

/* State letter of pid from /proc/PID/stat ('R', 'S', 'Z', ...), or 0 if there is no
 * such process. */
char pu_proc_state(pid_t pid);
/* 1 if pid exists and is not a zombie. */
int pu_alive(pid_t pid);
/* 1 if /proc/PID exists at all (zombies included). */
int pu_exists(pid_t pid);

/* First NUL-terminated string of /proc/PID/cmdline into buf. 0 or -1. */
int pu_cmdline(pid_t pid, char *buf, size_t size);
/* /proc/PID/comm without the newline into buf. 0 or -1. */
int pu_comm(pid_t pid, char *buf, size_t size);

/* ---- log files ---- */

/* Number of lines of path equal to line (exactly, without the newline). */
int pu_count_lines(const char *path, const char *line);
/* Lines of path that are sanitizer reports (ASan, UBSan, LeakSanitizer). */
int pu_sanitizer_reports(const char *path);
/* Number of lines of path containing needle. */
int pu_count_containing(const char *path, const char *needle);
/* Waits until at least count lines of path equal line. 1, or 0 on timeout. */
int pu_wait_line(const char *path, const char *line, int count, int timeout_ms);
/* Waits until at least count lines of path contain needle. 1, or 0 on timeout. */
int pu_wait_containing(const char *path, const char *needle, int count, int timeout_ms);

/* The lines of text that start with prefix, copied into lines (each malloc'd, free
 * with pu_free_lines), at most max. The count. */
int pu_lines_with_prefix(const char *path, const char *prefix, char **lines, int max);
void pu_free_lines(char **lines, int count);

/* For every line of path that reads exactly before<number>after, stores the number.
 * At most max; the count. */
int pu_collect_pids(const char *path, const char *before, const char *after, pid_t *out,
                    int max);

/* Parses a space-separated list of pids ("12 34 56"). Count, or -1 on other text. */
int pu_parse_pid_list(const char *text, pid_t *out, int max);

/* 1 if the two lists hold the same pids (any order, no duplicates). */
int pu_same_pids(const pid_t *a, int na, const pid_t *b, int nb);
/* 1 if pid is in the list. */
int pu_has_pid(const pid_t *list, int n, pid_t pid);

/* ---- FastCGI requests through cgi-fcgi ---- */

/* A request running in the background: cgi-fcgi writes the response to out_path. */
typedef struct pu_request {
    pid_t pid;
    char out_path[PU_PATH_MAX];
} pu_request_t;

/* Starts `cgi-fcgi -bind -connect sock` with REQUEST_METHOD=GET and QUERY_STRING=query;
 * its output goes to out_path (stderr to out_path.err). 0 or -1. */
int pu_request_start(pu_request_t *req, const char *sock, const char *query,
                     const char *out_path);
/* Waits up to timeout_ms for the client; then *out is the whole response (malloc'd,
 * NUL-terminated) and *len its length. Returns the client's exit code, -1 if it did not
 * exit in time (it is killed) or died from a signal. */
int pu_request_finish(pu_request_t *req, int timeout_ms, char **out, size_t *len);
/* pu_request_start then pu_request_finish. */
int pu_request(const char *sock, const char *query, const char *out_path, int timeout_ms,
               char **out, size_t *len);

/* The body of a CGI response (after the blank line), NULL if there is none. */
const char *pu_response_body(const char *response, size_t len, size_t *body_len);
/* The value of the X-Worker-Pid header the test application sends, or -1. */
pid_t pu_response_pid(const char *response);
/* 1 if body is exactly n bytes of the pattern (pu_pattern_byte). */
int pu_body_is_pattern(const char *body, size_t body_len, size_t n);

#endif /* PROC_UTIL_H */
