// The manager's life as one explicit phase, and every transition in one table.
//
//   starting --ready--> running --reload--> reloading --ready--> running
//       \                  |                    |
//        `-----------------+------stop----------+--> stopping --reaped--> done
//
// A reload while starting stays starting: the pool has never been ready, the
// service manager has not been told READY=1, and start_timeout still runs.
// "ready": every worker of the pool can serve; "reload": HUP or pm_request_reload;
// "stop": TERM, pm_request_stop, a start timeout or a fatal error; "reaped": the last
// worker is gone. An event a phase does not list leaves it where it is (a second
// TERM, or a HUP, while stopping). What the manager does on entering a phase (the
// service manager's READY=1, RELOADING=1, STOPPING=1) is in one place too
// (proc_manager::enter).
#pragma once

namespace fcgipm {

enum class phase { starting, running, reloading, stopping, done };
enum class phase_event { ready, reload, stop, reaped };

// The phase after event in p; p itself if the event does nothing there.
constexpr phase next_phase(phase p, phase_event e) {
    constexpr phase table[5][4] = {
        //              ready            reload            stop             reaped
        /* starting  */ {phase::running, phase::starting, phase::stopping, phase::starting},
        /* running   */ {phase::running, phase::reloading, phase::stopping, phase::running},
        /* reloading */ {phase::running, phase::reloading, phase::stopping, phase::reloading},
        /* stopping  */ {phase::stopping, phase::stopping, phase::stopping, phase::done},
        /* done      */ {phase::done, phase::done, phase::done, phase::done},
    };
    return table[static_cast<int>(p)][static_cast<int>(e)];
}

constexpr const char *phase_name(phase p) {
    constexpr const char *names[] = {"starting", "running", "reloading", "stopping", "done"};
    return names[static_cast<int>(p)];
}

}  // namespace fcgipm
