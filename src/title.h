// The process title as ps(1) and /proc/PID/cmdline show it, and comm.
#pragma once

#include <string>

namespace fcgipm {

// Sets comm (PR_SET_NAME, first 15 bytes) and rewrites the program's original argv
// strings in place, as setproctitle(3) does: the title is cut to the room the
// original arguments took. Any argv string the program still needs must be copied
// first. Where the program's argv is not where the kernel says (under valgrind),
// only comm is set.
void set_process_title(const std::string &title);

// The title as it is now (comm, and the argv strings' bytes), to be put back.
struct saved_title {
    char comm[17] = "";
    std::string area;
};
saved_title save_process_title();
void restore_process_title(const saved_title &t);

}  // namespace fcgipm
