// Internal error and exit signalling. Internals throw; the C boundary (capi.cpp)
// catches and turns each into a return code or a process exit.
#pragma once

#include <stdexcept>
#include <string>

#include "fcgi_pm.h"

namespace fcgipm {

// A failure with its PM_E* code and a message naming the problem.
class error : public std::runtime_error {
public:
    error(int code, const std::string &message, int sys_errno = 0)
        : std::runtime_error(message), code_(code), sys_errno_(sys_errno) {}
    int code() const noexcept { return code_; }
    int sys_errno() const noexcept { return sys_errno_; }  // behind a PM_ESYS, else 0

private:
    int code_;
    int sys_errno_;
};

// The process is to end with `status`: the log line has been written and workers
// are gone. Thrown rather than calling exit() so that every frame unwinds to the C
// boundary, which exits or (with no_exit) returns.
struct exit_request {
    int status;
};

}  // namespace fcgipm
