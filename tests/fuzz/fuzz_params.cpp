// libFuzzer target for everything that parses text: parameter values through the C
// API (pm_parameter / pm_get_parameter) and the PM_* environment defaults.
//
// Input: "<name>\0<value>" (a missing \0 makes the whole input the value of a
// parameter picked by the first byte). Invariants checked:
// - a refused value changes nothing (every parameter reads the same before and after);
// - an accepted value reads back as text that is accepted again, unchanged;
// - a refusal carries a message naming the parameter.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "fcgi_pm.h"

namespace {

const char *const names[] = {"n_processes", "die_timeout", "start_delay", "pid_fname",
                             "pm_title", "process_name", "no_signals", "role", "no_exit",
                             "max_requests", "max_size", "sizecheck_num_requests",
                             "min_uptime", "backoff_min", "backoff_max", "crash_budget",
                             "crash_window"};

std::map<std::string, std::string> snapshot(pm_t *pm) {
    std::map<std::string, std::string> values;
    for (const char *name : names) {
        const char *v = pm_get_parameter(pm, name);
        if (!v)
            abort();  // every known parameter reads
        values[name] = v;
    }
    return values;
}

// The environment variable's value becomes the parameter's default only if valid.
void check_env_default(size_t which, const std::string &value) {
    static const struct {
        const char *var, *param;
    } defaults[] = {{"PM_MAX_REQUESTS", "max_requests"},
                    {"PM_MAX_SIZE", "max_size"},
                    {"PM_SIZECHECK_NUM_REQUESTS", "sizecheck_num_requests"}};
    const auto &d = defaults[which % 3];
    setenv(d.var, value.c_str(), 1);
    pm_t *pm = pm_create();
    unsetenv(d.var);
    const char *got = pm_get_parameter(pm, d.param);
    if (!got || got[0] == '-')
        abort();  // a default is never negative, whatever the environment says
    pm_t *check = pm_create();
    if (std::strcmp(got, "0") != 0 && pm_parameter(check, d.param, value.c_str()) != 0)
        abort();  // a value taken from the environment is one pm_parameter accepts
    pm_destroy(check);
    pm_destroy(pm);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string input(reinterpret_cast<const char *>(data), size);
    std::string name, value;
    size_t nul = input.find('\0');
    if (nul == std::string::npos) {
        name = size ? names[data[0] % (sizeof names / sizeof names[0])] : "n_processes";
        value = size ? input.substr(1) : "";
    } else {
        name = input.substr(0, nul);
        value = input.substr(nul + 1);
        value = value.substr(0, value.find('\0'));
    }

    pm_t *pm = pm_create();
    auto before = snapshot(pm);
    int rc = pm_parameter(pm, name.c_str(), value.c_str());
    if (rc < 0) {
        if (snapshot(pm) != before)
            abort();  // a refusal changed something
        if (rc != PM_EUNKNOWN && !std::strstr(pm_errmsg(pm), name.c_str()))
            abort();  // the message names the parameter
        if (std::strcmp(pm_strerror(rc), "unknown error code") == 0)
            abort();
    } else {
        std::string shown = pm_get_parameter(pm, name.c_str());
        if (pm_parameter(pm, name.c_str(), shown.c_str()) != 0 || shown != pm_get_parameter(pm, name.c_str()))
            abort();  // what is shown is accepted again, unchanged
    }
    pm_destroy(pm);

    if (value.size() < 64 && (size & 3) == 0)
        check_env_default(size, value);
    return 0;
}
