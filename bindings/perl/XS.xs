/*
 * XS.xs -- the glue between libfcgi-pm's C API and FCGI::ProcManager::XS.
 *
 * One handle object (FCGI::ProcManager::XS::Handle) owns a pm_t. The library runs
 * with "no_exit" 1, so every call that would end the process returns instead and
 * the Perl side exits through Perl's own exit (END blocks, destructors). The hooks
 * bring the library's events back into Perl, to methods of the object that owns
 * the handle, named when it is made (FCGI::ProcManager::XS: managing_init,
 * handling_init, pm_notify; FCGI::Engine::ProcManager::XS: its own):
 *   manager_init / server_init  -> $self->managing_init / $self->handling_init
 *   every log line              -> $self->pm_notify($msg) (the base one prints it)
 *   before each fork            -> every PerlIO buffer flushed, as Perl's fork does
 *   in the child after the fork -> Perl's pending signals forgotten, as Perl's fork does
 *   the manager's wait cut short by a signal -> the program's %SIG handlers run
 *   the manager's own decision to end  -> $self->_end_from_library(how, msg, status)
 *                                         (an overridden pm_die / pm_abort is called)
 * A hook's code may call pm_die, pm_exit or pm_abort: the Perl side then throws an
 * FCGI::ProcManager::XS::Exiting (not reported), the library unwinds, and
 * pm_manage exits through Perl with the status asked for.
 * A Perl exception in an init hook ends pm_manage in that process (logged through
 * the library, then rethrown by pm_manage); one in pm_notify is reported on STDERR.
 */
#define PERL_NO_GET_CONTEXT
#include "EXTERN.h"
#include "perl.h"
#include "XSUB.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <fcgi_pm.h>

typedef struct {
    pm_t *pm;
    SV *owner;       /* weak reference to the Perl object this handle belongs to */
    int printing;    /* inside the base pm_notify: a line goes straight to STDERR */
    int dispatching; /* inside $self->pm_notify: lines it causes go straight to STDERR */
    SV *hook_error;  /* the exception that ended an init hook, for pm_manage to rethrow */
    char *method[4]; /* called for: manager_init, server_init, each log line, an end */
    int in_hook;     /* Perl code called from a hook is running: no exit from there */
} pmxs_t;

enum { on_manager_init, on_server_init, on_line, on_end };

typedef pmxs_t *FCGI__ProcManager__XS__Handle;

/* Perl's STDERR (as reopened by the program), else the process's. */
static void print_line(pTHX_ const char *line)
{
    IO *io = PL_stderrgv ? GvIO(PL_stderrgv) : NULL;
    PerlIO *f = io && IoOFP(io) ? IoOFP(io) : PerlIO_stderr();
    PerlIO_printf(f, "%s\n", line);
    PerlIO_flush(f);
}

/* The exception a hook's pm_die/pm_exit/pm_abort throws: the library has the exit. */
static int is_exiting(pTHX_ SV *error)
{
    return sv_isobject(error) && sv_derived_from(error, "FCGI::ProcManager::XS::Exiting");
}

/* Calls $owner->method(args) (method NULL: Perl's pending signal handlers) in an
 * eval. Returns the exception (a new SV) or NULL; a hook's exit is no exception. */
static SV *call_owner_n(pTHX_ pmxs_t *h, const char *method, SV **args, int n)
{
    if (method && (!h->owner || !SvROK(h->owner)))
        return NULL; /* the object is gone (global destruction) */
    SV *error = NULL;
    dSP;
    ENTER;
    SAVETMPS;
    PUSHMARK(SP);
    if (method) {
        XPUSHs(sv_2mortal(newRV_inc(SvRV(h->owner))));
        for (int i = 0; i < n; i++)
            XPUSHs(args[i]);
    }
    PUTBACK;
    h->in_hook++;
    if (method)
        call_method(method, G_DISCARD | G_EVAL | G_VOID);
    else
        call_pv("FCGI::ProcManager::XS::Library::despatch_signals", G_DISCARD | G_EVAL);
    h->in_hook--;
    if (SvTRUE(ERRSV) && !is_exiting(aTHX_ ERRSV))
        error = newSVsv(ERRSV);
    FREETMPS;
    LEAVE;
    return error;
}

static SV *call_owner(pTHX_ pmxs_t *h, const char *method, SV *arg)
{
    return call_owner_n(aTHX_ h, method, &arg, arg ? 1 : 0);
}

/* An exception nothing can rethrow: on STDERR. */
static void report(pTHX_ const char *what, SV *error)
{
    STRLEN len;
    const char *text = SvPV(error, len);
    PerlIO_printf(PerlIO_stderr(), "FCGI::ProcManager::XS: %s died: %s%s", what, text,
                  len && text[len - 1] == '\n' ? "" : "\n");
    SvREFCNT_dec(error);
}

/* $0 as Perl shows it: the title the library has set (no set-magic: the library
 * owns the process title). */
static void mirror_title(pTHX_ pm_t *pm, const char *param)
{
    const char *title = pm_get_parameter(pm, param);
    if (title && *title)
        sv_setpv(get_sv("0", GV_ADD), title);
}

/* An init hook: the Perl method, and on an exception the library told to end
 * pm_manage (it undoes what it did), which then rethrows it. */
static void run_init(pTHX_ pmxs_t *h, int which, const char *title_param)
{
    mirror_title(aTHX_ h->pm, title_param);
    SV *error = call_owner(aTHX_ h, h->method[which], NULL);
    if (!error)
        return;
    SvREFCNT_dec(h->hook_error);
    h->hook_error = error;
    STRLEN len;
    const char *text = SvPV(error, len);
    pm_exit(h->pm, text, 255); /* "no_exit": returns; pm_manage returns PM_MANAGER_DONE */
}

static void manager_init_hook(pm_t *pm, void *user)
{
    dTHX;
    (void)pm;
    run_init(aTHX_ (pmxs_t *)user, on_manager_init, "pm_title");
}

static void server_init_hook(pm_t *pm, void *user)
{
    dTHX;
    (void)pm;
    run_init(aTHX_ (pmxs_t *)user, on_server_init, "process_name");
}

static void pre_fork_hook(pm_t *pm, void *user)
{
    dTHX;
    (void)pm;
    (void)user;
    PerlIO_flush((PerlIO *)NULL); /* what Perl's fork does first */
}

static void child_after_fork_hook(pm_t *pm, void *user)
{
    dTHX;
    (void)pm;
    (void)user;
    /* As Perl's fork does in the child: the parent's pending signals are not its. */
    PL_sig_pending = 0;
    if (PL_psig_pend) {
        int sig;
        for (sig = 1; sig < SIG_SIZE; sig++)
            PL_psig_pend[sig] = 0;
    }
}

/* Every log line: to $self->pm_notify without the "FastCGI: role (pid N): " the base
 * pm_notify puts back, so that a subclass's pm_notify sees what the original's does. */
static void notify_hook(pm_t *pm, const char *line, void *user)
{
    dTHX;
    pmxs_t *h = (pmxs_t *)user;
    (void)pm;
    if (h->printing || h->dispatching || !h->owner || !SvROK(h->owner) || PL_dirty) {
        print_line(aTHX_ line);
        return;
    }
    const char *msg = strstr(line, "): ");
    msg = msg ? msg + 3 : line;
    h->dispatching = 1;
    SV *error = call_owner(aTHX_ h, h->method[on_line], sv_2mortal(newSVpv(msg, 0)));
    h->dispatching = 0;
    if (error) {
        print_line(aTHX_ line);
        report(aTHX_ h->method[on_line], error);
    }
}

/* The manager decided to end (a stop, the die timeout): an overridden pm_die or
 * pm_abort has its say (FCGI::ProcManager::XS::_end_from_library). */
static void end_hook(pm_t *pm, int how, const char *msg, int status, void *user)
{
    dTHX;
    (void)pm;
    pmxs_t *h = (pmxs_t *)user;
    SV *args[3] = {sv_2mortal(newSViv(how)), sv_2mortal(newSVpv(msg, 0)), sv_2mortal(newSViv(status))};
    SV *error = call_owner_n(aTHX_ h, h->method[on_end], args, 3);
    if (error)
        report(aTHX_ how == PM_END_ABORT ? "pm_abort" : "pm_die", error);
}

/* The manager's wait was cut short by a signal: Perl noted it; its handler runs now. */
static void manager_signal_hook(pm_t *pm, void *user)
{
    dTHX;
    (void)pm;
    if (!PL_sig_pending)
        return;
    SV *error = call_owner(aTHX_ (pmxs_t *)user, NULL, NULL);
    if (error)
        report(aTHX_ "a %SIG handler", error);
}

static pmxs_t *handle_of(pTHX_ SV *self)
{
    if (SvROK(self) && SvTYPE(SvRV(self)) == SVt_PVHV) {
        SV **svp = hv_fetchs((HV *)SvRV(self), "_handle", 0);
        if (svp && SvROK(*svp) && sv_derived_from(*svp, "FCGI::ProcManager::XS::Handle"))
            return INT2PTR(pmxs_t *, SvIV(SvRV(*svp)));
    }
    croak("FCGI::ProcManager::XS: not an FCGI::ProcManager::XS object");
    return NULL;
}

/* The object a pm_* function works on: the first argument if it is one (then
 * shifted off), else the default object, as the original's self_or_default. */
static pmxs_t *self_or_default(pTHX_ SV **args, I32 items, I32 *first)
{
    if (items > 0 && SvROK(args[0]) && sv_isobject(args[0]) && sv_derived_from(args[0], "FCGI::ProcManager::XS")) {
        *first = 1;
        return handle_of(aTHX_ args[0]);
    }
    *first = 0;
    dSP;
    ENTER;
    SAVETMPS;
    PUSHMARK(SP);
    PUTBACK;
    int n = call_pv("FCGI::ProcManager::XS::_default_object", G_SCALAR);
    SPAGAIN;
    SV *obj = n == 1 ? POPs : &PL_sv_undef;
    pmxs_t *h = handle_of(aTHX_ obj);
    PUTBACK;
    FREETMPS;
    LEAVE;
    return h;
}

static void croak_failure(pTHX_ pm_t *pm, int rc)
{
    const char *msg = pm_errmsg(pm);
    croak("FCGI::ProcManager::XS: %s", msg && *msg ? msg : pm_strerror(rc));
}

/* A request-path call's result: exit now (through Perl) when the library says so. */
static void exit_if_asked(pTHX_ pm_t *pm, int rc)
{
    if (PM_IS_EXIT(rc))
        my_exit((U32)PM_EXIT_STATUS(rc));
    if (rc < 0)
        croak_failure(aTHX_ pm, rc);
}

MODULE = FCGI::ProcManager::XS    PACKAGE = FCGI::ProcManager::XS

PROTOTYPES: DISABLE

void
pm_pre_dispatch(...)
  PREINIT:
    I32 first;
  CODE:
    pmxs_t *h = self_or_default(aTHX_ &ST(0), items, &first);
    exit_if_asked(aTHX_ h->pm, pm_pre_dispatch(h->pm));

void
pm_post_dispatch(...)
  PREINIT:
    I32 first;
  CODE:
    pmxs_t *h = self_or_default(aTHX_ &ST(0), items, &first);
    exit_if_asked(aTHX_ h->pm, pm_post_dispatch(h->pm));

MODULE = FCGI::ProcManager::XS    PACKAGE = FCGI::ProcManager::XS::Handle

FCGI::ProcManager::XS::Handle
new(class, owner, manager_init, server_init, line, end)
    const char *class
    SV *owner
    const char *manager_init
    const char *server_init
    const char *line
    const char *end
  CODE:
    (void)class;
    if (!SvROK(owner))
        croak("FCGI::ProcManager::XS::Handle: the owner must be a reference");
    pmxs_t *h = (pmxs_t *)calloc(1, sizeof *h);
    if (!h || !(h->pm = pm_create()) || !(h->method[on_manager_init] = strdup(manager_init)) ||
        !(h->method[on_server_init] = strdup(server_init)) || !(h->method[on_line] = strdup(line)) ||
        !(h->method[on_end] = strdup(end))) {
        if (h) {
            pm_destroy(h->pm);
            for (int i = 0; i < 4; i++)
                free(h->method[i]);
            free(h);
        }
        croak("FCGI::ProcManager::XS: out of memory");
    }
    pm_parameter(h->pm, "no_exit", "1");
    h->owner = newRV_inc(SvRV(owner));
    sv_rvweaken(h->owner);
    pm_set_notify_hook(h->pm, notify_hook, h);
    pm_set_hook(h->pm, PM_HOOK_MANAGER_INIT, manager_init_hook, h);
    pm_set_hook(h->pm, PM_HOOK_SERVER_INIT, server_init_hook, h);
    pm_set_hook(h->pm, PM_HOOK_PRE_FORK, pre_fork_hook, h);
    pm_set_hook(h->pm, PM_HOOK_CHILD_AFTER_FORK, child_after_fork_hook, h);
    pm_set_hook(h->pm, PM_HOOK_MANAGER_SIGNAL, manager_signal_hook, h);
    pm_set_end_hook(h->pm, end_hook, h);
    RETVAL = h;
  OUTPUT:
    RETVAL

void
DESTROY(h)
    FCGI::ProcManager::XS::Handle h
  CODE:
    pm_destroy(h->pm);
    SvREFCNT_dec(h->owner);
    SvREFCNT_dec(h->hook_error);
    for (int i = 0; i < 4; i++)
        free(h->method[i]);
    free(h);

void
set(h, name, value)
    FCGI::ProcManager::XS::Handle h
    const char *name
    const char *value
  CODE:
    int rc = pm_parameter(h->pm, name, value);
    if (rc < 0)
        croak_failure(aTHX_ h->pm, rc);

SV *
get(h, name)
    FCGI::ProcManager::XS::Handle h
    const char *name
  CODE:
    const char *value = pm_get_parameter(h->pm, name);
    RETVAL = value ? newSVpv(value, 0) : &PL_sv_undef;
  OUTPUT:
    RETVAL

const char *
manage(h)
    FCGI::ProcManager::XS::Handle h
  CODE:
    SvREFCNT_dec(h->hook_error);
    h->hook_error = NULL;
    int rc = pm_manage(h->pm);
    if (h->hook_error) {
        SV *error = sv_2mortal(h->hook_error);
        h->hook_error = NULL;
        errno = 0; /* Perl's die exits with $! if set: the library's is not the program's */
        croak_sv(error);
    }
    if (rc < 0)
        croak_failure(aTHX_ h->pm, rc);
    RETVAL = rc == PM_WORKER ? "worker" : rc == PM_SINGLE_PROCESS ? "single" : "done";
  OUTPUT:
    RETVAL

void
pre_dispatch(h)
    FCGI::ProcManager::XS::Handle h
  CODE:
    exit_if_asked(aTHX_ h->pm, pm_pre_dispatch(h->pm));

void
post_dispatch(h)
    FCGI::ProcManager::XS::Handle h
  CODE:
    exit_if_asked(aTHX_ h->pm, pm_post_dispatch(h->pm));

int
accept_begin(h)
    FCGI::ProcManager::XS::Handle h
  CODE:
    RETVAL = pm_accept_begin(h->pm);
  OUTPUT:
    RETVAL

void
accept_end(h)
    FCGI::ProcManager::XS::Handle h
  CODE:
    pm_accept_end(h->pm);

void
name_request(h, env)
    FCGI::ProcManager::XS::Handle h
    SV *env
  CODE:
    /* The request FCGI.pm has just accepted, named for the live status from its
     * environment (the hash given to FCGI::Request): method, URI and client. */
    if (SvROK(env) && SvTYPE(SvRV(env)) == SVt_PVHV) {
        HV *hv = (HV *)SvRV(env);
        SV **method = hv_fetchs(hv, "REQUEST_METHOD", 0);
        SV **uri = hv_fetchs(hv, "REQUEST_URI", 0);
        SV **remote = hv_fetchs(hv, "REMOTE_ADDR", 0);
        pm_set_request(h->pm, method && SvOK(*method) ? SvPV_nolen(*method) : NULL,
                       uri && SvOK(*uri) ? SvPV_nolen(*uri) : NULL,
                       remote && SvOK(*remote) ? SvPV_nolen(*remote) : NULL);
    }

int
in_hook(h)
    FCGI::ProcManager::XS::Handle h
  CODE:
    RETVAL = h->in_hook;
  OUTPUT:
    RETVAL

int
exit_status(h)
    FCGI::ProcManager::XS::Handle h
  CODE:
    RETVAL = pm_exit_status(h->pm);
  OUTPUT:
    RETVAL

int
end(h, how, msg, status)
    FCGI::ProcManager::XS::Handle h
    const char *how
    const char *msg
    int status
  CODE:
    /* pm_die, pm_exit or pm_abort: the status to exit with (the caller exits). */
    int rc = !strcmp(how, "die") ? pm_die(h->pm, msg, status)
           : !strcmp(how, "abort") ? pm_abort(h->pm, msg, status)
           : pm_exit(h->pm, msg, status);
    if (!PM_IS_EXIT(rc))
        croak_failure(aTHX_ h->pm, rc);
    RETVAL = PM_EXIT_STATUS(rc);
  OUTPUT:
    RETVAL

SV *
wait(h)
    FCGI::ProcManager::XS::Handle h
  CODE:
    int rc = pm_wait(h->pm);
    RETVAL = rc > 0 ? newSViv(rc) : &PL_sv_undef;
  OUTPUT:
    RETVAL

int
write_pid_file(h, fname)
    FCGI::ProcManager::XS::Handle h
    SV *fname
  CODE:
    RETVAL = pm_write_pid_file(h->pm, SvOK(fname) && SvCUR(fname) ? SvPV_nolen(fname) : NULL);
  OUTPUT:
    RETVAL

int
remove_pid_file(h, fname)
    FCGI::ProcManager::XS::Handle h
    SV *fname
  CODE:
    RETVAL = pm_remove_pid_file(h->pm, SvOK(fname) && SvCUR(fname) ? SvPV_nolen(fname) : NULL);
  OUTPUT:
    RETVAL

void
change_process_name(h, name)
    FCGI::ProcManager::XS::Handle h
    const char *name
  CODE:
    int rc = pm_change_process_name(h->pm, name);
    if (rc < 0)
        croak_failure(aTHX_ h->pm, rc);
    sv_setpv(get_sv("0", GV_ADD), name);

int
received_signal(h, signo)
    FCGI::ProcManager::XS::Handle h
    int signo
  CODE:
    RETVAL = pm_received_signal(h->pm, signo);
  OUTPUT:
    RETVAL

void
notify(h, msg)
    FCGI::ProcManager::XS::Handle h
    const char *msg
  CODE:
    h->printing = 1;
    pm_notify(h->pm, "%s", msg);
    h->printing = 0;

const char *
role(h)
    FCGI::ProcManager::XS::Handle h
  CODE:
    RETVAL = pm_role(h->pm);
  OUTPUT:
    RETVAL

void
request_stop(h, signo)
    FCGI::ProcManager::XS::Handle h
    int signo
  CODE:
    int rc = pm_request_stop(h->pm, signo);
    if (rc < 0)
        croak_failure(aTHX_ h->pm, rc);

void
request_reload(h)
    FCGI::ProcManager::XS::Handle h
  CODE:
    int rc = pm_request_reload(h->pm);
    if (rc < 0)
        croak_failure(aTHX_ h->pm, rc);

MODULE = FCGI::ProcManager::XS    PACKAGE = FCGI::ProcManager::XS::Library

void
despatch_signals(...)
  CODE:
    PERL_ASYNC_CHECK();

const char *
version()
  CODE:
    RETVAL = pm_version();
  OUTPUT:
    RETVAL

void
parameters()
  PPCODE:
    /* (name, type, bounds) for each parameter the library has. */
    const char *name, *bounds;
    int type, settable, i;
    for (i = 0; pm_parameter_info(i, &name, &type, &bounds, &settable) == 0; i++) {
        AV *row = newAV();
        av_push(row, newSVpv(name, 0));
        av_push(row, newSVpv(type == PM_PARAM_BOOLEAN ? "boolean" : type == PM_PARAM_SECONDS ? "seconds"
                             : type == PM_PARAM_INTEGER ? "integer" : type == PM_PARAM_CHOICE ? "choice" : "text", 0));
        av_push(row, newSVpv(bounds ? bounds : "", 0));
        mXPUSHs(newRV_noinc((SV *)row));
    }
