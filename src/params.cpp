#include "params.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <errno.h>
#include <functional>
#include <utility>
#include <vector>

#include "fcgi_pm.h"

namespace fcgipm {

namespace {

// Strict decimal integer: optional '-' (when allowed), digits, nothing else.
int parse_int(const std::string &text, int64_t lo, int64_t hi, int64_t &out, std::string &why) {
    size_t i = 0;
    bool negative = false;
    if (i < text.size() && text[i] == '-') {
        negative = true;
        ++i;
    }
    if (i == text.size()) {
        why = "not a number";
        return PM_EBADVALUE;
    }
    uint64_t magnitude = 0;
    for (; i < text.size(); ++i) {
        char c = text[i];
        if (c < '0' || c > '9') {
            why = "not a whole number";
            return PM_EBADVALUE;
        }
        if (magnitude > (UINT64_MAX - 9) / 10) {
            why = "too large";
            return PM_ERANGE;
        }
        magnitude = magnitude * 10 + static_cast<uint64_t>(c - '0');
    }
    if (magnitude > static_cast<uint64_t>(INT64_MAX)) {
        why = "too large";
        return PM_ERANGE;
    }
    int64_t v = negative ? -static_cast<int64_t>(magnitude) : static_cast<int64_t>(magnitude);
    if (v < lo || v > hi) {
        why = v < 0 && lo == 0 ? "must not be negative"
                                : "must be between " + std::to_string(lo) + " and " + std::to_string(hi);
        return PM_ERANGE;
    }
    out = v;
    return PM_OK;
}

// Non-negative seconds with up to three decimals ("2", "0.25"), to milliseconds.
int parse_seconds(const std::string &text, int64_t max_seconds, int64_t &out_ms, std::string &why) {
    size_t dot = text.find('.');
    std::string whole = text.substr(0, dot);
    std::string frac = dot == std::string::npos ? "" : text.substr(dot + 1);
    if (!text.empty() && text[0] == '-') {
        why = "must not be negative";
        return PM_ERANGE;
    }
    if (whole.empty() || (dot != std::string::npos && frac.empty()) || frac.size() > 3 ||
        whole.find_first_not_of("0123456789") != std::string::npos ||
        frac.find_first_not_of("0123456789") != std::string::npos) {
        why = "not a number of seconds (e.g. 60 or 0.25)";
        return PM_EBADVALUE;
    }
    int64_t seconds = 0;
    int rc = parse_int(whole, 0, max_seconds, seconds, why);
    if (rc != PM_OK)
        return rc;
    frac.resize(3, '0');
    out_ms = seconds * 1000 + std::atoi(frac.c_str());
    return PM_OK;
}


constexpr int64_t max_seconds = 100000000;  // about three years
constexpr int64_t max_workers = 100000;

struct param_def {
    const char *name;
    int type;            // PM_PARAM_*
    std::string bounds;  // as pm_parameter_info tells them
    std::function<int(params &, const std::string &, std::string &)> set;
    std::function<std::string(const params &)> get;
    bool settable_when_running = true;
};

std::string range_text(int64_t lo, int64_t hi) {
    return std::to_string(lo) + ".." + std::to_string(hi);
}

param_def integer(const char *name, int64_t params::*field, int64_t lo, int64_t hi) {
    return {name, PM_PARAM_INTEGER, range_text(lo, hi),
            [=](params &p, const std::string &v, std::string &why) {
                int64_t x = 0;
                int rc = parse_int(v, lo, hi, x, why);
                if (rc == PM_OK)
                    p.*field = x;
                return rc;
            },
            [=](const params &p) { return std::to_string(p.*field); }};
}

param_def seconds(const char *name, int64_t params::*field) {
    return {name, PM_PARAM_SECONDS, range_text(0, max_seconds),
            [=](params &p, const std::string &v, std::string &why) {
                int64_t ms = 0;
                int rc = parse_seconds(v, max_seconds, ms, why);
                if (rc == PM_OK)
                    p.*field = ms;
                return rc;
            },
            [=](const params &p) { return seconds_text(p.*field); }};
}

param_def boolean(const char *name, bool params::*field) {
    return {name, PM_PARAM_BOOLEAN, "0|1",
            [=](params &p, const std::string &v, std::string &why) {
                if (v != "0" && v != "1") {
                    why = "must be 0 or 1";
                    return static_cast<int>(PM_EBADVALUE);
                }
                p.*field = v == "1";
                return static_cast<int>(PM_OK);
            },
            [=](const params &p) { return std::string(p.*field ? "1" : "0"); }};
}

param_def text(const char *name, std::string params::*field, size_t max_len, bool allow_empty) {
    return {name, PM_PARAM_TEXT, range_text(allow_empty ? 0 : 1, static_cast<int64_t>(max_len)),
            [=](params &p, const std::string &v, std::string &why) {
                if (v.size() > max_len) {
                    why = "longer than " + std::to_string(max_len) + " bytes";
                    return static_cast<int>(PM_ETOOLONG);
                }
                if (v.empty() && !allow_empty) {
                    why = "must not be empty";
                    return static_cast<int>(PM_EBADVALUE);
                }
                p.*field = v;
                return static_cast<int>(PM_OK);
            },
            [=](const params &p) { return p.*field; }};
}

// One of a few words, each standing for a value of the field.
template <class T>
param_def choice(const char *name, T params::*field, std::vector<std::pair<std::string, T>> words) {
    std::string bounds;
    for (const auto &w : words)
        bounds += (bounds.empty() ? "" : "|") + w.first;
    return {name, PM_PARAM_CHOICE, bounds,
            [=](params &p, const std::string &v, std::string &why) {
                for (const auto &w : words)
                    if (v == w.first) {
                        p.*field = w.second;
                        return static_cast<int>(PM_OK);
                    }
                why = "must be one of " + bounds;
                return static_cast<int>(PM_EBADVALUE);
            },
            [=](const params &p) {
                for (const auto &w : words)
                    if (p.*field == w.second)
                        return w.first;
                return std::string();
            }};
}

param_def fixed_when_running(param_def d) {
    d.settable_when_running = false;
    return d;
}

const std::vector<std::pair<std::string, int>> &stop_signals() {
    static const std::vector<std::pair<std::string, int>> names = {
        {"TERM", SIGTERM}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"HUP", SIGHUP},
        {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"WINCH", SIGWINCH}};
    return names;
}

const std::vector<param_def> &param_table() {
    static const std::vector<param_def> table = {
        integer("n_processes", &params::n_processes, -max_workers, max_workers),
        seconds("die_timeout", &params::die_timeout_ms),
        seconds("start_delay", &params::start_delay_ms),
        fixed_when_running(text("pid_fname", &params::pid_fname, max_path_length, true)),
        fixed_when_running(text("pm_title", &params::pm_title, max_title_length, false)),
        text("process_name", &params::process_name, max_title_length, false),
        fixed_when_running(boolean("no_signals", &params::no_signals)),
        fixed_when_running(choice<std::string>("role", &params::role, {{"manager", "manager"}, {"server", "server"}})),
        fixed_when_running(boolean("no_exit", &params::no_exit)),
        integer("max_requests", &params::max_requests, 0, INT64_MAX / 2),
        integer("max_size", &params::max_size, 0, INT64_MAX / 1024),
        integer("sizecheck_num_requests", &params::sizecheck_num_requests, 0, INT64_MAX),
        seconds("min_uptime", &params::min_uptime_ms),
        seconds("backoff_min", &params::backoff_min_ms),
        seconds("backoff_max", &params::backoff_max_ms),
        integer("crash_budget", &params::crash_budget, 0, max_workers),
        seconds("crash_window", &params::crash_window_ms),
        fixed_when_running(seconds("start_timeout", &params::start_timeout_ms)),
        choice<params::worker_end>("worker_exit", &params::worker_exit,
                                   {{"exit", params::worker_end::exit},
                                    {"_exit", params::worker_end::flushed_exit},
                                    {"_exit_unflushed", params::worker_end::unflushed_exit}}),
        boolean("stop_listening", &params::stop_listening),
        // Exec'd workers got its disposition and parent-death signal when they started.
        fixed_when_running(choice<int>("stop_signal", &params::stop_signal, stop_signals())),
        integer("min_share_size", &params::min_share_size, 0, INT64_MAX / 1024),
        integer("max_unshared_size", &params::max_unshared_size, 0, INT64_MAX / 1024),
        fixed_when_running(boolean("scoreboard", &params::scoreboard)),
        fixed_when_running(text("status_socket", &params::status_socket, 107, true)),
        fixed_when_running(text("status_group", &params::status_group, 255, true)),
        fixed_when_running(choice<pool_mode>("pool", &params::pool,
                                             {{"static", pool_mode::fixed},
                                              {"dynamic", pool_mode::dynamic},
                                              {"ondemand", pool_mode::ondemand}})),
        integer("min_idle", &params::min_idle, 0, max_workers),
        integer("max_idle", &params::max_idle, 0, max_workers),
        // The scoreboard has a slot for each, made at the start.
        fixed_when_running(integer("max_workers", &params::max_workers, 0, max_workers)),
        seconds("idle_timeout", &params::idle_timeout_ms),
        integer("spawn_rate", &params::spawn_rate, 1, 1000000),
        seconds("request_timeout", &params::request_timeout_ms),
        seconds("request_timeout_grace", &params::request_timeout_grace_ms),
        seconds("request_slow", &params::request_slow_ms),
        integer("max_requests_jitter", &params::max_requests_jitter, 0, INT64_MAX / 2),
        seconds("max_age", &params::max_age_ms),
        integer("max_rss", &params::max_rss_kb, 0, INT64_MAX / 1024),
    };
    return table;
}

const param_def *find_param(const std::string &name) {
    for (const param_def &d : param_table())
        if (name == d.name)
            return &d;
    return nullptr;
}

std::string check_pool_mode(const params &p) {
    const params d;  // the defaults: what a mode without the setting leaves alone
    std::string mode = p.pool == pool_mode::dynamic ? "dynamic" : p.pool == pool_mode::ondemand ? "ondemand" : "static";
    auto only = [&](const char *name, const char *modes) {
        return std::string(name) + " applies to pool " + modes + " only (pool is " + mode + ")";
    };
    if (p.pool == pool_mode::fixed) {
        if (p.min_idle != d.min_idle)
            return only("min_idle", "dynamic");
        if (p.max_idle != d.max_idle)
            return only("max_idle", "dynamic");
        if (p.max_workers != d.max_workers)
            return only("max_workers", "dynamic or ondemand");
        if (p.idle_timeout_ms != d.idle_timeout_ms)
            return only("idle_timeout", "dynamic or ondemand");
        if (p.spawn_rate != d.spawn_rate)
            return only("spawn_rate", "dynamic or ondemand");
        return "";
    }
    if (p.max_workers < 1)
        return "pool " + mode + " needs max_workers (the most workers it may grow to)";
    if (p.no_signals)
        return "pool " + mode + " needs the library's signal handling (no_signals 0): it retires idle workers "
               "with TERM, and tells busy ones by their state";
    if (p.pool == pool_mode::ondemand) {
        if (p.min_idle != d.min_idle)
            return only("min_idle", "dynamic");
        if (p.max_idle != d.max_idle)
            return only("max_idle", "dynamic");
        if (p.n_processes > 0)
            return "n_processes applies to pool static or dynamic only (pool ondemand starts none)";
        return "";
    }
    int64_t max_idle = p.max_idle ? p.max_idle : std::max<int64_t>(p.min_idle, p.n_processes);
    if (p.min_idle < 1)
        return "min_idle must be at least 1 in pool dynamic (pool ondemand keeps none)";
    if (p.n_processes < 0)
        return "n_processes must not be negative in pool dynamic";
    if (p.n_processes > p.max_workers)
        return "n_processes (" + std::to_string(p.n_processes) + ") must not exceed max_workers (" +
               std::to_string(p.max_workers) + ")";
    if (p.min_idle > p.max_workers)
        return "min_idle (" + std::to_string(p.min_idle) + ") must not exceed max_workers (" +
               std::to_string(p.max_workers) + ")";
    if (p.min_idle > max_idle)
        return "min_idle (" + std::to_string(p.min_idle) + ") must not exceed max_idle (" + std::to_string(max_idle) +
               ")";
    if (max_idle > p.max_workers)
        return "max_idle (" + std::to_string(max_idle) + ") must not exceed max_workers (" +
               std::to_string(p.max_workers) + ")";
    return "";
}

// The request limits and recycling, in any pool.
std::string check_limits(const params &p) {
    const params d;
    if (p.request_timeout_grace_ms != d.request_timeout_grace_ms && p.request_timeout_ms == 0)
        return "request_timeout_grace applies with request_timeout only";
    if (p.max_requests_jitter > 0 && p.max_requests == 0)
        return "max_requests_jitter applies with max_requests only";
    if (p.request_slow_ms > 0 && p.request_timeout_ms > 0 && p.request_slow_ms >= p.request_timeout_ms)
        return "request_slow (" + seconds_text(p.request_slow_ms) + " s) must be below request_timeout (" +
               seconds_text(p.request_timeout_ms) + " s): a request is stopped at its deadline";
    if (!p.scoreboard && (p.request_timeout_ms > 0 || p.request_slow_ms > 0 || p.max_rss_kb > 0))
        return std::string(p.request_timeout_ms > 0 ? "request_timeout" : p.request_slow_ms > 0 ? "request_slow" : "max_rss") +
               " needs the scoreboard (scoreboard 1): the manager reads each worker's requests there";
    return "";
}

}  // namespace

std::string check_pool(const params &p) {
    std::string limits = check_limits(p);
    return limits.empty() ? check_pool_mode(p) : limits;
}

pool_settings pool_settings_of(const params &p) {
    pool_settings s;
    s.mode = p.pool;
    s.start = static_cast<size_t>(std::max<int64_t>(p.n_processes, 0));
    s.min_idle = p.pool == pool_mode::dynamic ? static_cast<size_t>(p.min_idle) : 0;
    s.max_idle = p.pool == pool_mode::dynamic
                     ? static_cast<size_t>(p.max_idle ? p.max_idle : std::max<int64_t>(p.min_idle, p.n_processes))
                     : 0;
    s.max_workers = static_cast<size_t>(p.max_workers);
    s.idle_timeout_ms = p.idle_timeout_ms;
    s.spawn_rate = p.spawn_rate;
    return s;
}

std::string seconds_text(int64_t ms) {
    std::string s = std::to_string(ms / 1000);
    if (int64_t frac = ms % 1000) {
        std::string f = std::to_string(frac);
        f.insert(0, 3 - f.size(), '0');
        while (f.back() == '0')
            f.pop_back();
        s += "." + f;
    }
    return s;
}

params default_params(std::string &warnings) {
    params p;
    const char *prog = program_invocation_short_name;
    std::string base = prog && *prog ? prog : "fcgi-pm";
    base = base.substr(0, max_title_length - 8);
    p.pm_title = base + "-fcgi-pm";
    p.process_name = base + "-fcgi";

    static const struct {
        const char *env;
        const char *param;
    } from_env[] = {{"PM_MAX_REQUESTS", "max_requests"},
                    {"PM_MAX_SIZE", "max_size"},
                    {"PM_SIZECHECK_NUM_REQUESTS", "sizecheck_num_requests"},
                    {"PM_MAX_REQUESTS_JITTER", "max_requests_jitter"}};
    for (const auto &e : from_env) {
        const char *value = std::getenv(e.env);
        if (!value || !*value)
            continue;
        std::string why;
        if (set_param(p, e.param, value, why) != PM_OK)
            warnings += std::string(e.env) + ": " + why + " (ignored)\n";
    }
    return p;
}

int set_param(params &p, const std::string &name, const std::string &value, std::string &message, bool running) {
    const param_def *d = find_param(name);
    if (!d) {
        message = "unknown parameter '" + name + "'";
        return PM_EUNKNOWN;
    }
    if (running && !d->settable_when_running) {
        message = name + ": cannot change once pm_manage has started";
        return PM_ESTATE;
    }
    std::string why;
    params candidate = p;
    int rc = d->set(candidate, value, why);
    if (rc != PM_OK) {
        std::string shown = value.size() > 64 ? value.substr(0, 64) + "..." : value;
        message = name + ": '" + shown + "': " + why;
        return rc;
    }
    if (candidate.backoff_min_ms > candidate.backoff_max_ms) {
        message = name + ": backoff_min must not exceed backoff_max";
        return PM_ERANGE;
    }
    if (running) {
        // A running pool's limits stay coherent: a change that would not make one is refused.
        std::string pool = check_pool(candidate);
        if (!pool.empty() && check_pool(p).empty()) {
            message = name + ": '" + value + "': " + pool;
            return PM_EBADVALUE;
        }
    }
    if (name == "process_name")
        candidate.process_name_set = true;
    p = std::move(candidate);
    return PM_OK;
}

bool get_param(const params &p, const std::string &name, std::string &value) {
    const param_def *d = find_param(name);
    if (!d)
        return false;
    value = d->get(p);
    return true;
}

bool describe_param(int index, param_info &info) {
    const std::vector<param_def> &table = param_table();
    if (index < 0 || static_cast<size_t>(index) >= table.size())
        return false;
    const param_def &d = table[static_cast<size_t>(index)];
    info = {d.name, d.type, d.bounds.c_str(), d.settable_when_running};
    return true;
}

const char *signal_name(int signo) {
    for (const auto &s : stop_signals())
        if (s.second == signo)
            return s.first.c_str();
    return signo == SIGKILL ? "KILL" : "?";
}

}  // namespace fcgipm
