// What both roles share: construction, hooks and logging.
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "os.h"
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
    os::close_fd(wake_fd_);
}

void proc_manager::set_hook(pm_hook_t which, pm_hook_fn fn, void *user) {
    hooks_[which] = {fn, user};
}

void proc_manager::set_notify_hook(pm_notify_fn fn, void *user) {
    notify_fn_ = fn;
    notify_user_ = user;
}

void proc_manager::set_end_hook(pm_end_fn fn, void *user) {
    end_fn_ = fn;
    end_user_ = user;
}

// The host's say at the manager's own decision to end (pm_set_end_hook).
void proc_manager::call_end_hook(int how, const std::string &msg, int status) {
    unsigned bit = 1u << how;
    if (!end_fn_ || (in_end_hooks_ & bit))
        return;
    in_end_hooks_ |= bit;
    struct running {
        unsigned &flags;
        unsigned bit;
        ~running() { flags &= ~bit; }
    } guard{in_end_hooks_, bit};
    int before = exit_requests;
    host_ran_ = true;
    end_fn_(handle_, how, msg.c_str(), status, end_user_);
    if (exit_requests != before)
        throw exit_request{pending_exit};  // it ended the manager itself (no_exit mode)
}

void proc_manager::call_hook(pm_hook_t which) {
    if (!hooks_[which].fn)
        return;
    int before = exit_requests;
    host_ran_ = true;
    hooks_[which].fn(handle_, hooks_[which].user);
    if (exit_requests != before)
        throw exit_request{pending_exit};  // the hook asked to exit (no_exit mode)
}

void proc_manager::notify(std::string_view msg) {
    char stack_line[512];
    std::string heap_line;
    char *line = stack_line;
    pid_t self = ::getpid();
    size_t len = format_log_line(stack_line, sizeof stack_line, params_.role, self, msg);
    if (len >= sizeof stack_line) {  // no room for the newline or the NUL
        heap_line.resize(len + 1);
        format_log_line(heap_line.data(), len + 1, params_.role, self, msg);
        line = heap_line.data();
    }
    if (!notify_fn_) {
        line[len] = '\n';
        write_stderr(line, len + 1);
        return;
    }
    line[len] = '\0';
    bool nested = in_notify_;
    int before = exit_requests;
    in_notify_ = true;
    host_ran_ = true;
    notify_fn_(handle_, line, notify_user_);
    in_notify_ = nested;
    if (exit_requests != before && !nested)
        throw exit_request{pending_exit};  // the hook asked to exit (no_exit mode)
}

}  // namespace fcgipm
