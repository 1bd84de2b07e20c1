// Unit tests of the internals: parameters, log formatting, the pid table, the pid file.
#include <cerrno>
#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <random>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

extern "C" {
#include <cmocka.h>
}

#include "fcgi_pm.h"
#include "log.h"
#include "manager_phase.h"
#include "params.h"
#include "pid_table.h"
#include "pidfile.h"
#include "pool_policy.h"
#include "scoreboard.h"

using namespace fcgipm;

namespace {

std::string get(const params &p, const char *name) {
    std::string v;
    assert_true(get_param(p, name, v));
    return v;
}

int set(params &p, const char *name, const char *value) {
    std::string message;
    return set_param(p, name, value, message);
}

std::string temp_dir() {
    char tmpl[] = "/tmp/fcgi-pm-unit-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return tmpl;
}

std::string read_file(const std::string &path) {
    int fd = open(path.c_str(), O_RDONLY);
    if (fd < 0)
        return "<missing>";
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

void test_defaults(void **) {
    std::string warnings;
    unsetenv("PM_MAX_REQUESTS");
    params p = default_params(warnings);
    assert_string_equal(get(p, "n_processes").c_str(), "0");
    assert_string_equal(get(p, "die_timeout").c_str(), "60");
    assert_string_equal(get(p, "start_delay").c_str(), "0");
    assert_string_equal(get(p, "pid_fname").c_str(), "");
    assert_string_equal(get(p, "role").c_str(), "manager");
    assert_string_equal(get(p, "no_signals").c_str(), "0");
    assert_string_equal(get(p, "max_requests").c_str(), "0");
    // Titles follow the program name, as Perl's perl-fcgi-pm / perl-fcgi do.
    assert_string_equal(get(p, "pm_title").c_str(), "test_internals-fcgi-pm");
    assert_string_equal(get(p, "process_name").c_str(), "test_internals-fcgi");
    assert_true(warnings.empty());
}

void test_environment_defaults(void **) {
    setenv("PM_MAX_REQUESTS", "250", 1);
    setenv("PM_MAX_SIZE", "65536", 1);
    setenv("PM_SIZECHECK_NUM_REQUESTS", "junk", 1);
    std::string warnings;
    params p = default_params(warnings);
    assert_string_equal(get(p, "max_requests").c_str(), "250");
    assert_string_equal(get(p, "max_size").c_str(), "65536");
    assert_string_equal(get(p, "sizecheck_num_requests").c_str(), "0");
    assert_non_null(strstr(warnings.c_str(), "PM_SIZECHECK_NUM_REQUESTS"));
    unsetenv("PM_MAX_REQUESTS");
    unsetenv("PM_MAX_SIZE");
    unsetenv("PM_SIZECHECK_NUM_REQUESTS");
}

void test_set_and_get(void **) {
    std::string w;
    params p = default_params(w);
    assert_int_equal(set(p, "n_processes", "8"), 0);
    assert_int_equal(set(p, "n_processes", "-1"), 0);
    assert_string_equal(get(p, "n_processes").c_str(), "-1");
    assert_int_equal(set(p, "die_timeout", "0.25"), 0);
    assert_string_equal(get(p, "die_timeout").c_str(), "0.25");
    assert_int_equal(set(p, "die_timeout", "2.500"), 0);
    assert_string_equal(get(p, "die_timeout").c_str(), "2.5");
    assert_int_equal(set(p, "start_delay", "1"), 0);
    assert_int_equal(set(p, "pid_fname", "/run/x.pid"), 0);
    assert_string_equal(get(p, "pid_fname").c_str(), "/run/x.pid");
    assert_int_equal(set(p, "no_signals", "1"), 0);
    assert_int_equal(set(p, "role", "server"), 0);
    assert_int_equal(set(p, "max_size", "1024"), 0);
    assert_int_equal(set(p, "backoff_max", "5"), 0);
}

void test_bad_values_change_nothing(void **) {
    std::string w;
    params p = default_params(w);
    assert_int_equal(set(p, "n_processes", "4"), 0);
    struct {
        const char *name, *value;
        int code;
    } cases[] = {
        {"n_processes", "four", PM_EBADVALUE},
        {"n_processes", "", PM_EBADVALUE},
        {"n_processes", " 4", PM_EBADVALUE},
        {"n_processes", "4 ", PM_EBADVALUE},
        {"n_processes", "0x10", PM_EBADVALUE},
        {"n_processes", "99999999999999999999999", PM_ERANGE},
        {"n_processes", "1000001", PM_ERANGE},
        {"die_timeout", "-1", PM_ERANGE},
        {"die_timeout", "1e3", PM_EBADVALUE},
        {"die_timeout", "1.", PM_EBADVALUE},
        {"die_timeout", "0.0001", PM_EBADVALUE},
        {"die_timeout", "18446744073709551616", PM_ERANGE},
        {"max_requests", "-5", PM_ERANGE},
        {"max_size", "9223372036854775807", PM_ERANGE},
        {"no_signals", "yes", PM_EBADVALUE},
        {"role", "boss", PM_EBADVALUE},
        {"pm_title", "", PM_EBADVALUE},
        {"backoff_min", "60", PM_ERANGE},  // above backoff_max
        {"no_such_parameter", "1", PM_EUNKNOWN},
    };
    for (const auto &c : cases) {
        std::string message;
        int rc = set_param(p, c.name, c.value, message);
        if (rc != c.code)
            fail_msg("%s=%s: got %d, want %d", c.name, c.value, rc, c.code);
        // The message names the parameter and the problem.
        assert_non_null(strstr(message.c_str(), c.name));
    }
    assert_string_equal(get(p, "n_processes").c_str(), "4");
    assert_string_equal(get(p, "die_timeout").c_str(), "60");
    assert_string_equal(get(p, "role").c_str(), "manager");

    std::string long_title(256, 't');
    assert_int_equal(set(p, "pm_title", long_title.c_str()), PM_ETOOLONG);
    std::string long_path(4096, 'p');
    assert_int_equal(set(p, "pid_fname", long_path.c_str()), PM_ETOOLONG);
    std::string ok_title(255, 't');
    assert_int_equal(set(p, "pm_title", ok_title.c_str()), 0);
}

void test_log_format(void **) {
    assert_string_equal(format_log_line("manager", 42, "initialized").c_str(),
                        "FastCGI: manager (pid 42): initialized");
    // Trailing white space (Perl's \s) goes; inner white space stays.
    assert_string_equal(format_log_line("server", 7, "a  b \t\r\n\n").c_str(), "FastCGI: server (pid 7): a  b");
    assert_string_equal(format_log_line("manager", 1, "dying: ").c_str(), "FastCGI: manager (pid 1): dying:");
    assert_string_equal(format_log_line("manager", 1, "").c_str(), "FastCGI: manager (pid 1): ");
}

// Into a buffer: the length is the whole line's, what fits is written, nothing past cap.
void test_log_format_into_buffer(void **) {
    const char *full = "FastCGI: server (pid 7): started";
    char buf[64];
    std::memset(buf, '#', sizeof buf);
    assert_int_equal(format_log_line(buf, sizeof buf, "server", 7, "started \n"), std::strlen(full));
    assert_memory_equal(buf, full, std::strlen(full));
    assert_int_equal(buf[std::strlen(full)], '#');
    std::memset(buf, '#', sizeof buf);
    assert_int_equal(format_log_line(buf, 12, "server", 7, "started"), std::strlen(full));
    assert_memory_equal(buf, full, 12);
    assert_int_equal(buf[12], '#');
    assert_int_equal(format_log_line(nullptr, 0, "server", 7, "started"), std::strlen(full));
}

void test_short_text(void **) {
    short_text t;
    t << "server (pid " << 2147483647 << ") exited with status " << -1;
    assert_true(t.view() == "server (pid 2147483647) exited with status -1");
    short_text long_one;  // cut off at its capacity, never past it
    std::string expected;
    for (int i = 0; i < 100; ++i) {
        long_one << "abc";
        expected += "abc";
    }
    assert_true(long_one.view().size() < expected.size());
    assert_true(long_one.view() == std::string_view(expected).substr(0, long_one.view().size()));
}

// The pid table against std::map: random inserts and erases, the table kept half
// full (its limit), so that probe runs form, merge, and wrap around its end.
void test_pid_table_matches_a_map(void **) {
    pid_table table;
    std::map<pid_t, size_t> model;
    std::mt19937 rng(12345);
    pid_t pool[400];
    for (pid_t &pid : pool)
        pid = static_cast<pid_t>(1 + rng() % 4000000);
    table.reserve(16);
    for (int step = 0; step < 200000; ++step) {
        pid_t pid = pool[rng() % 400];
        if (rng() % 3 && (model.size() < 16 || model.count(pid))) {
            size_t index = rng() % 1000;
            table.set(pid, index);
            model[pid] = index;
        } else {
            table.erase(pid);
            model.erase(pid);
        }
        assert_int_equal(table.size(), model.size());
        pid_t probe = pool[rng() % 400];
        auto it = model.find(probe);
        assert_int_equal(table.find(probe), it == model.end() ? pid_table::npos : it->second);
    }
    for (auto &[pid, index] : model)
        assert_int_equal(table.find(pid), index);
}

void test_pid_table_grows_and_clears(void **) {
    pid_table table;
    assert_int_equal(table.find(5), pid_table::npos);
    table.erase(5);  // empty: nothing to do
    for (pid_t pid = 100; pid < 1100; ++pid)  // past any reserve: it grows
        table.set(pid, static_cast<size_t>(pid) * 2);
    assert_int_equal(table.size(), 1000);
    for (pid_t pid = 100; pid < 1100; ++pid)
        assert_int_equal(table.find(pid), static_cast<size_t>(pid) * 2);
    assert_int_equal(table.find(99), pid_table::npos);
    // No worker has a pid <= 0 (a SIGCHLD from outside the pid namespace reads as 0):
    // never found, never stored, and erasing one removes nothing.
    assert_int_equal(table.find(0), pid_table::npos);
    assert_int_equal(table.find(-1), pid_table::npos);
    table.set(0, 3);
    table.erase(0);
    table.erase(-1);
    assert_int_equal(table.size(), 1000);
    assert_int_equal(table.find(0), pid_table::npos);
    table.set(100, 7);  // an update, not a second entry
    assert_int_equal(table.size(), 1000);
    assert_int_equal(table.find(100), 7);
    table.clear();
    assert_int_equal(table.size(), 0);
    assert_int_equal(table.find(100), pid_table::npos);
}

void test_pid_file_write_and_remove(void **) {
    std::string dir = temp_dir(), path = dir + "/pm.pid", message;
    {
        pid_file f;
        assert_int_equal(f.acquire(path, 1234, message), 0);
        assert_string_equal(read_file(path).c_str(), "1234\n");
        // Rewritten shorter: no stale digits left.
        assert_int_equal(f.acquire(path, 99, message), 0);
        assert_string_equal(read_file(path).c_str(), "99\n");
        assert_int_equal(f.release(message), 0);
        assert_int_equal(access(path.c_str(), F_OK), -1);
    }
    rmdir(dir.c_str());
}

void test_pid_file_second_holder_refused(void **) {
    std::string dir = temp_dir(), path = dir + "/pm.pid", message;
    pid_file first, second;
    assert_int_equal(first.acquire(path, 1111, message), 0);
    assert_int_equal(second.acquire(path, 2222, message), PM_ELOCKED);
    assert_non_null(strstr(message.c_str(), "held by another manager (pid 1111)"));
    assert_string_equal(read_file(path).c_str(), "1111\n");
    first.release(message);
    rmdir(dir.c_str());
}

void test_pid_file_stale_is_taken_over(void **) {
    std::string dir = temp_dir(), path = dir + "/pm.pid", message;
    int fd = open(path.c_str(), O_WRONLY | O_CREAT, 0644);
    assert_true(write(fd, "999999999\n", 10) == 10);
    close(fd);
    pid_file f;
    assert_int_equal(f.acquire(path, 4321, message), 0);
    assert_string_equal(read_file(path).c_str(), "4321\n");
    f.release(message);
    rmdir(dir.c_str());
}

void test_pid_file_symlink_and_fifo_refused(void **) {
    std::string dir = temp_dir(), path = dir + "/pm.pid", target = dir + "/target", message;
    int fd = open(target.c_str(), O_WRONLY | O_CREAT, 0644);
    assert_true(write(fd, "precious\n", 9) == 9);
    close(fd);
    assert_int_equal(symlink(target.c_str(), path.c_str()), 0);
    pid_file f;
    assert_int_equal(f.acquire(path, 1, message), PM_EPIDFILE);
    assert_non_null(strstr(message.c_str(), "symbolic link"));
    assert_string_equal(read_file(target).c_str(), "precious\n");
    unlink(path.c_str());

    assert_int_equal(mkfifo(path.c_str(), 0644), 0);
    assert_int_equal(f.acquire(path, 1, message), PM_EPIDFILE);
    assert_non_null(strstr(message.c_str(), "not a regular file"));
    assert_false(f.held());
    unlink(path.c_str());

    // A socket at the path is refused too (opening it fails with ENXIO).
    int sock = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    assert_int_equal(bind(sock, reinterpret_cast<struct sockaddr *>(&addr), sizeof addr), 0);
    assert_int_equal(f.acquire(path, 1, message), PM_EPIDFILE);
    close(sock);
    unlink(path.c_str());
    unlink(target.c_str());
    rmdir(dir.c_str());
}

void test_pid_file_not_removed_when_replaced(void **) {
    std::string dir = temp_dir(), path = dir + "/pm.pid", message;
    pid_file f;
    assert_int_equal(f.acquire(path, 5, message), 0);
    // Someone replaces the file: it is no longer ours to remove.
    unlink(path.c_str());
    int fd = open(path.c_str(), O_WRONLY | O_CREAT, 0644);
    assert_true(write(fd, "77\n", 3) == 3);
    close(fd);
    assert_int_equal(f.release(message), 0);
    assert_string_equal(read_file(path).c_str(), "77\n");
    unlink(path.c_str());
    rmdir(dir.c_str());
}

void test_pid_file_unopenable(void **) {
    std::string message;
    pid_file f;
    assert_int_equal(f.acquire("/nonexistent-dir/pm.pid", 1, message), PM_ESYS);
    assert_string_equal(message.c_str(), "open: /nonexistent-dir/pm.pid: No such file or directory");
}

// The stop protocol on one slot: a busy worker is never to be signalled, a flag set
// before it goes busy is seen by it, and one set while busy is seen at its end.
void test_scoreboard_stop_protocol(void **) {
    worker_slot s{};
    assert_int_equal(board::flag_stop(s, board::stop_hup), board::idle);  // idle: signal it
    assert_int_equal(board::begin_request(s), board::stop_hup);           // seen going busy
    assert_int_equal(board::flag_stop(s, board::stop_term), board::busy); // busy: no signal
    assert_int_equal(board::end_request(s), board::stop_term | board::stop_hup);  // stays busy, exits
    assert_int_equal(board::load(s) & board::phase_mask, board::busy);

    worker_slot t{};
    assert_int_equal(board::begin_request(t), 0u);
    assert_int_equal(board::end_request(t), 0u);  // idle again
    assert_int_equal(board::load(t), board::idle);
    assert_int_equal(board::begin_request(t), 0u);
    assert_int_equal(board::begin_request(t), 0u);  // pm_accept, then pm_pre_dispatch
    assert_int_equal(board::flag_stop(t, board::stop_term), board::busy);
    assert_int_equal(board::end_request(t), board::stop_term);

    // Accepting (pm_accept on a socket shut down at TERM): reported as such, left for
    // idle when the wait ends, and for busy from either.
    worker_slot a{};
    board::set_accepting(a, true);
    assert_int_equal(board::load(a), board::accepting);
    board::set_accepting(a, false);
    assert_int_equal(board::load(a), board::idle);
    board::set_accepting(a, true);
    assert_int_equal(board::flag_stop(a, board::stop_term), board::accepting);
    board::set_accepting(a, false);  // the flag stays
    assert_int_equal(board::load(a), board::stop_term | board::idle);
    board::set_accepting(a, true);
    assert_int_equal(board::begin_request(a), board::stop_term);
    board::set_accepting(a, false);  // busy stays busy
    assert_int_equal(board::load(a) & board::phase_mask, board::busy);
}

// The phase table: every transition, and the events each phase ignores.
void test_manager_phases(void **) {
    using e = phase_event;
    assert_true(next_phase(phase::starting, e::ready) == phase::running);
    assert_true(next_phase(phase::starting, e::reload) == phase::starting);  // never ready yet
    assert_true(next_phase(phase::running, e::reload) == phase::reloading);
    assert_true(next_phase(phase::reloading, e::ready) == phase::running);
    assert_true(next_phase(phase::reloading, e::reload) == phase::reloading);
    for (phase p : {phase::starting, phase::running, phase::reloading})
        assert_true(next_phase(p, e::stop) == phase::stopping);
    for (e ev : {e::ready, e::reload, e::stop})
        assert_true(next_phase(phase::stopping, ev) == phase::stopping);  // a second TERM, a HUP
    assert_true(next_phase(phase::stopping, e::reaped) == phase::done);
    for (e ev : {e::ready, e::reload, e::stop, e::reaped})
        assert_true(next_phase(phase::done, ev) == phase::done);
    assert_string_equal(phase_name(phase::reloading), "reloading");
}

// pm_parameter_info's source: every parameter described, its text form parsed back.
void test_parameter_descriptions(void **) {
    std::string warnings;
    params p = default_params(warnings);
    param_info info;
    int n = 0;
    for (; describe_param(n, info); ++n) {
        std::string value, message;
        assert_true(get_param(p, info.name, value));
        params copy = p;
        assert_int_equal(set_param(copy, info.name, value, message), PM_OK);  // its own default
        assert_int_equal(set_param(copy, info.name, value, message, true),
                         info.settable_when_running ? PM_OK : PM_ESTATE);
    }
    assert_false(describe_param(n, info));
    assert_false(describe_param(-1, info));
    assert_true(n >= 21);
}


// --- the pool policy: decisions without processes

pool_settings dynamic_pool(size_t start, size_t min_idle, size_t max_idle, size_t max_workers) {
    pool_settings s;
    s.mode = pool_mode::dynamic;
    s.start = start;
    s.min_idle = min_idle;
    s.max_idle = max_idle;
    s.max_workers = max_workers;
    s.idle_timeout_ms = 1000;
    s.spawn_rate = 1000;
    return s;
}

// n ready workers in slots 0.., the first busy ones busy, the others idle since since_ms.
pool_look pool_of(int64_t now, size_t n, size_t busy, int64_t since_ms, size_t waiting) {
    pool_look l{now, n, 0, {}, waiting};
    for (size_t i = 0; i < n; ++i)
        l.ready.push_back({i, i >= busy, since_ms});
    return l;
}

void test_policy_fixed(void **) {
    pool_settings s;
    s.start = 4;
    pool_policy p(s);
    assert_int_equal(p.initial_target(), 4);
    pool_decision d = p.decide(pool_of(0, 4, 4, 0, 100));
    assert_int_equal(d.target, 4);  // a fixed pool never grows, whatever waits
    assert_true(d.retire.empty());
    assert_true(d.next_check_ms == INT64_MAX);
}

void test_policy_burst(void **) {
    // A dynamic pool of 2 (min idle 2), both busy, 64 connections waiting: 64 more
    // at once (the waiting ones, and two to be idle), up to max_workers.
    pool_policy p(dynamic_pool(2, 2, 4, 100));
    assert_int_equal(p.initial_target(), 2);
    pool_decision d = p.decide(pool_of(0, 2, 2, 0, 64));
    assert_int_equal(d.target, 2 + 66);
    assert_true(d.next_check_ms == pool_policy::recheck_ms);  // connections still wait: look again soon
    // Those starting count as coming: no more for the same queue.
    pool_look l = pool_of(1, 2, 2, 0, 64);
    l.live = 68;
    l.starting = 66;
    assert_int_equal(p.decide(l).target, 68);
    // max_workers bounds it.
    pool_policy small(dynamic_pool(2, 2, 4, 10));
    assert_int_equal(small.decide(pool_of(0, 2, 2, 0, 64)).target, 10);
    // An idle worker takes a waiting connection: none needed beyond min idle.
    pool_policy q(dynamic_pool(2, 1, 4, 100));
    assert_int_equal(q.decide(pool_of(0, 3, 1, 0, 1)).target, 3 + 0);
}

void test_policy_min_idle(void **) {
    // Nothing waits, but only 1 of 5 is idle: 1 more to keep min idle 2.
    pool_policy p(dynamic_pool(5, 2, 4, 100));
    pool_decision d = p.decide(pool_of(0, 5, 4, 0, 0));
    assert_int_equal(d.target, 6);
    assert_true(d.retire.empty());
}

void test_policy_spawn_rate(void **) {
    pool_settings s = dynamic_pool(0, 0, 0, 1000);
    s.mode = pool_mode::ondemand;
    s.spawn_rate = 10;  // 10 a second, 10 at once
    pool_policy p(s);
    assert_int_equal(p.initial_target(), 0);
    pool_decision d = p.decide(pool_of(0, 0, 0, 0, 50));
    assert_int_equal(d.target, 10);
    assert_true(d.next_check_ms > 0 && d.next_check_ms <= 100);  // the next token's time
    pool_look l = pool_of(50, 10, 10, 0, 40);
    assert_int_equal(p.decide(l).target, 10);  // half a token: none yet
    l = pool_of(300, 10, 10, 0, 40);
    assert_int_equal(p.decide(l).target, 13);  // 3 tokens since (2.5 + 0.5 left)
}

void test_policy_shrink(void **) {
    pool_policy p(dynamic_pool(2, 1, 2, 100));
    // 6 idle since 0 (timeout 1 s): at 500 nothing is due, the check comes at 1000.
    pool_decision d = p.decide(pool_of(500, 6, 0, 0, 0));
    assert_true(d.retire.empty());
    assert_int_equal(d.target, 6);
    assert_int_equal(d.next_check_ms, 1000);
    // At 1000 all 4 beyond max idle 2 retire at once, longest idle first.
    pool_look l = pool_of(1000, 6, 0, 0, 0);
    l.ready[5].idle_since_ms = 900;  // idle for less: kept, with one other
    l.ready[2].idle_since_ms = -50;  // idle longest: first to go
    d = p.decide(l);
    assert_int_equal(d.retire.size(), 4);
    assert_int_equal(d.retire[0], 2);
    for (size_t slot : d.retire)
        assert_true(slot != 5);
    assert_int_equal(d.target, 2);
    // Never a busy one, and never while connections wait.
    d = p.decide(pool_of(5000, 6, 6, 0, 0));
    assert_true(d.retire.empty());
    d = p.decide(pool_of(5000, 6, 0, 0, 3));
    assert_true(d.retire.empty());
}

void test_pool_settings_checked(void **) {
    params p;
    assert_string_equal(check_pool(p).c_str(), "");  // static, the defaults
    assert_int_equal(set(p, "pool", "dynamic"), PM_OK);
    assert_true(check_pool(p).find("needs max_workers") != std::string::npos);
    assert_int_equal(set(p, "max_workers", "8"), PM_OK);
    assert_string_equal(check_pool(p).c_str(), "");
    pool_settings s = pool_settings_of(p);
    assert_int_equal(s.min_idle, 1);
    assert_int_equal(s.max_idle, 1);  // the larger of min_idle and n_processes (0)
    assert_int_equal(set(p, "n_processes", "4"), PM_OK);
    assert_int_equal(pool_settings_of(p).max_idle, 4);
    assert_int_equal(set(p, "min_idle", "6"), PM_OK);
    assert_string_equal(check_pool(p).c_str(), "");  // max_idle follows: 6
    assert_int_equal(set(p, "max_idle", "4"), PM_OK);
    assert_string_equal(check_pool(p).c_str(), "min_idle (6) must not exceed max_idle (4)");
    assert_int_equal(set(p, "max_idle", "7"), PM_OK);
    assert_string_equal(check_pool(p).c_str(), "");
    assert_int_equal(set(p, "n_processes", "9"), PM_OK);
    assert_string_equal(check_pool(p).c_str(), "n_processes (9) must not exceed max_workers (8)");
    params o;
    assert_int_equal(set(o, "pool", "ondemand"), PM_OK);
    assert_int_equal(set(o, "max_workers", "8"), PM_OK);
    assert_string_equal(check_pool(o).c_str(), "");
    assert_int_equal(pool_settings_of(o).min_idle, 0);
    assert_int_equal(set(o, "min_idle", "2"), PM_OK);
    assert_true(check_pool(o).find("min_idle applies to pool dynamic only") != std::string::npos);
    assert_int_equal(set(o, "min_idle", "1"), PM_OK);
    assert_int_equal(set(o, "no_signals", "1"), PM_OK);
    assert_true(check_pool(o).find("needs the library's signal handling (no_signals 0)") != std::string::npos);
    params f;
    assert_int_equal(set(f, "idle_timeout", "3"), PM_OK);
    assert_true(check_pool(f).find("idle_timeout applies to pool dynamic or ondemand only (pool is static)") !=
                std::string::npos);
    // While running, a change that would break a good pool is refused, and changes nothing.
    assert_int_equal(set(p, "n_processes", "4"), PM_OK);
    assert_string_equal(check_pool(p).c_str(), "");
    std::string message;
    assert_int_equal(set_param(p, "min_idle", "8", message, true), PM_EBADVALUE);
    assert_true(message.find("must not exceed") != std::string::npos);
    assert_string_equal(get(p, "min_idle").c_str(), "6");
    assert_int_equal(set_param(p, "max_workers", "9", message, true), PM_ESTATE);
}

// Request limits and recycling, checked together in any pool.
void test_limit_settings_checked(void **) {
    params p;
    assert_int_equal(set(p, "request_timeout_grace", "2"), PM_OK);
    assert_string_equal(check_pool(p).c_str(), "request_timeout_grace applies with request_timeout only");
    assert_int_equal(set(p, "request_timeout", "1.5"), PM_OK);
    assert_string_equal(check_pool(p).c_str(), "");
    assert_int_equal(set(p, "request_slow", "1.5"), PM_OK);
    assert_string_equal(check_pool(p).c_str(),
                        "request_slow (1.5 s) must be below request_timeout (1.5 s): a request is stopped at its deadline");
    assert_int_equal(set(p, "request_slow", "0.5"), PM_OK);
    assert_string_equal(check_pool(p).c_str(), "");
    assert_int_equal(set(p, "scoreboard", "0"), PM_OK);
    assert_true(check_pool(p).find("request_timeout needs the scoreboard") == 0);
    params j;
    assert_int_equal(set(j, "max_requests_jitter", "10"), PM_OK);
    assert_string_equal(check_pool(j).c_str(), "max_requests_jitter applies with max_requests only");
    assert_int_equal(set(j, "max_requests", "100"), PM_OK);
    assert_string_equal(check_pool(j).c_str(), "");
    assert_int_equal(set(j, "max_rss", "-1"), PM_ERANGE);
    assert_int_equal(set(j, "max_age", "-1"), PM_ERANGE);
    assert_int_equal(set(j, "max_rss", "65536"), PM_OK);
    assert_int_equal(set(j, "max_age", "3600"), PM_OK);
    assert_string_equal(check_pool(j).c_str(), "");
    // Settable while running, but not into a combination that is refused.
    std::string message;
    assert_int_equal(set_param(j, "max_requests", "0", message, true), PM_EBADVALUE);
    assert_true(message.find("max_requests_jitter applies with max_requests only") != std::string::npos);
    assert_string_equal(get(j, "max_requests").c_str(), "100");
}

void test_policy_ondemand_to_zero(void **) {
    pool_settings s = dynamic_pool(0, 0, 0, 64);
    s.mode = pool_mode::ondemand;
    pool_policy p(s);
    // One connection, no worker: one.
    assert_int_equal(p.decide(pool_of(0, 0, 0, 0, 1)).target, 1);
    // Idle past the timeout: none left.
    pool_decision d = p.decide(pool_of(2000, 3, 0, 500, 0));
    assert_int_equal(d.target, 0);
    assert_int_equal(d.retire.size(), 3);
    // A busy one stays; the check comes back within a timeout.
    d = p.decide(pool_of(2000, 3, 1, 500, 0));
    assert_int_equal(d.retire.size(), 2);
    assert_int_equal(d.target, 1);
    assert_true(d.next_check_ms <= 2000 + 1000);
}
}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_environment_defaults),
        cmocka_unit_test(test_set_and_get),
        cmocka_unit_test(test_bad_values_change_nothing),
        cmocka_unit_test(test_log_format),
        cmocka_unit_test(test_pid_file_write_and_remove),
        cmocka_unit_test(test_log_format_into_buffer),
        cmocka_unit_test(test_short_text),
        cmocka_unit_test(test_pid_table_matches_a_map),
        cmocka_unit_test(test_pid_table_grows_and_clears),
        cmocka_unit_test(test_pid_file_second_holder_refused),
        cmocka_unit_test(test_pid_file_stale_is_taken_over),
        cmocka_unit_test(test_pid_file_symlink_and_fifo_refused),
        cmocka_unit_test(test_pid_file_not_removed_when_replaced),
        cmocka_unit_test(test_pid_file_unopenable),
        cmocka_unit_test(test_scoreboard_stop_protocol),
        cmocka_unit_test(test_manager_phases),
        cmocka_unit_test(test_parameter_descriptions),
        cmocka_unit_test(test_policy_fixed),
        cmocka_unit_test(test_policy_burst),
        cmocka_unit_test(test_policy_min_idle),
        cmocka_unit_test(test_policy_spawn_rate),
        cmocka_unit_test(test_policy_shrink),
        cmocka_unit_test(test_policy_ondemand_to_zero),
        cmocka_unit_test(test_pool_settings_checked),
        cmocka_unit_test(test_limit_settings_checked),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
