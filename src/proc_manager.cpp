// What both roles share: construction, hooks and logging.
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "proc_manager.h"

namespace fcgipm {

proc_manager::proc_manager(pm_t *handle) : handle_(handle) {
    std::string warnings;
    params_ = default_params(warnings);
    for (size_t start = 0, end; (end = warnings.find('\n', start)) != std::string::npos; start = end + 1)
        notify(warnings.substr(start, end - start));
}

proc_manager::~proc_manager() {
    if (managing_)
        leave_manager_role();
}

void proc_manager::set_hook(pm_hook_t which, pm_hook_fn fn, void *user) {
    hooks_[which] = {fn, user};
}

void proc_manager::set_notify_hook(pm_notify_fn fn, void *user) {
    notify_fn_ = fn;
    notify_user_ = user;
}

void proc_manager::call_hook(pm_hook_t which) {
    if (!hooks_[which].fn)
        return;
    int before = exit_requests;
    hooks_[which].fn(handle_, hooks_[which].user);
    if (exit_requests != before)
        throw exit_request{pending_exit};  // the hook asked to exit (no_exit mode)
}

void proc_manager::notify(const std::string &msg) {
    std::string line = format_log_line(params_.role, ::getpid(), msg);
    if (!notify_fn_) {
        write_stderr_line(line);
        return;
    }
    bool nested = in_notify_;
    int before = exit_requests;
    in_notify_ = true;
    notify_fn_(handle_, line.c_str(), notify_user_);
    in_notify_ = nested;
    if (exit_requests != before && !nested)
        throw exit_request{pending_exit};  // the hook asked to exit (no_exit mode)
}

}  // namespace fcgipm
