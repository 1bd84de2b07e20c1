#include "title.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

namespace fcgipm {

namespace {

struct argv_area {
    char *start = nullptr;
    size_t size = 0;
};

// The kernel reports where the argv strings live: fields 48 and 49 of
// /proc/self/stat (arg_start, arg_end).
argv_area find_argv_area() {
    argv_area area;
    int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return area;
    char buf[1024];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0)
        return area;
    buf[n] = '\0';
    char *p = std::strrchr(buf, ')');  // comm may hold spaces and parentheses
    if (!p)
        return area;
    unsigned long start = 0, end = 0;
    ++p;
    for (int field = 3; field <= 49 && *p; ++field) {
        while (*p == ' ')
            ++p;
        if (field == 48)
            start = std::strtoul(p, nullptr, 10);
        if (field == 49)
            end = std::strtoul(p, nullptr, 10);
        while (*p && *p != ' ')
            ++p;
    }
    // Only if the kernel's argv is the program's own (argv[0] is where glibc saw it):
    // under valgrind or another loader, that memory belongs to someone else.
    if (start && end > start && reinterpret_cast<char *>(start) == program_invocation_name) {
        area.start = reinterpret_cast<char *>(start);
        area.size = end - start;
    }
    return area;
}

}  // namespace

void set_process_title(const std::string &title) {
    ::prctl(PR_SET_NAME, title.c_str(), 0, 0, 0);
    static const argv_area area = [] {
        argv_area a = find_argv_area();
        if (a.start) {
            // glibc's program name points into argv: keep a copy for error(3) and
            // syslog(3) before the title overwrites it.
            char *name = ::strdup(program_invocation_name);
            char *slash = name ? std::strrchr(name, '/') : nullptr;
            if (name) {
                program_invocation_name = name;
                program_invocation_short_name = slash ? slash + 1 : name;
            }
        }
        return a;
    }();
    if (!area.start || area.size < 2)
        return;
    size_t len = title.size() < area.size - 1 ? title.size() : area.size - 1;
    std::memcpy(area.start, title.data(), len);
    std::memset(area.start + len, 0, area.size - len);
}

}  // namespace fcgipm
