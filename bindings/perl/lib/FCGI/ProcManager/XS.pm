package FCGI::ProcManager::XS;
# FCGI::ProcManager's interface on libfcgi-pm: the manager, its signals, forks, pid
# file, titles and log lines are the C library's; this module adapts the original's
# methods, parameters and hooks to it (see the POD below).
use strict;
use warnings;
use Exporter;
use POSIX ();
use Scalar::Util ();
use XSLoader;
use vars qw($VERSION @ISA @EXPORT_OK %EXPORT_TAGS $Q $SIG_CODEREF $Default);

BEGIN {
    $VERSION = '0.28';
    @ISA = qw(Exporter);
    @EXPORT_OK = qw(pm_manage pm_die pm_wait
                    pm_write_pid_file pm_remove_pid_file
                    pm_pre_dispatch pm_post_dispatch
                    pm_change_process_name pm_received_signal pm_parameter
                    pm_warn pm_notify pm_abort pm_exit
                    $SIG_CODEREF);
    $EXPORT_TAGS{all} = \@EXPORT_OK;
    $Default = 'FCGI::ProcManager::XS';
}
XSLoader::load('FCGI::ProcManager::XS', $VERSION);

# The library's parameters, by name: their type ("boolean", "seconds", ...).
my %library_type = map { $_->[0] => $_->[1] } FCGI::ProcManager::XS::Library::parameters();
# Set by this module itself, never by a caller: the exits are Perl's.
my %reserved = (no_exit => 1, worker_exit => 1);

# The original's defaults, and the titles it sets ("perl-fcgi" in each worker).
sub _defaults {
    return (role => 'manager', start_delay => 0, die_timeout => 60,
            pm_title => 'perl-fcgi-pm', process_name => 'perl-fcgi');
}

sub new {
    my ($proto, $init) = @_;
    $init ||= {};
    my $this = { $proto->_defaults, %$init };
    bless $this, ref($proto) || $proto;
    $this->{_handle} = FCGI::ProcManager::XS::Handle->new($this, 'managing_init', 'handling_init', 'pm_notify',
                                                          '_end_from_library');
    $this->_limits_from_environment;
    for my $key (sort keys %$this) {
        $this->_to_library($key, $this->{$key}) if defined $this->{$key};
    }
    return $this;
}

# FCGI::ProcManager has no request or size limits: the library's defaults from
# PM_MAX_REQUESTS and friends (PM_MAX_REQUESTS_JITTER too: without max_requests the
# library refuses it) are for the Constrained class only.
sub _limits_from_environment {
    my ($this) = @_;
    for my $key (qw(max_requests max_requests_jitter max_size sizecheck_num_requests)) {
        $this->{_handle}->set($key, 0) unless defined $this->{$key};
    }
}

# A parameter the library knows goes to it (checked there: a bad value dies with
# its message and changes nothing); any other stays in the object, as in the original.
sub _to_library {
    my ($this, $key, $value) = @_;
    return if !$library_type{$key} || $reserved{$key};
    $value = $value ? 1 : 0 if $library_type{$key} eq 'boolean';
    $this->{_handle}->set($key, "$value");
}

sub _default_object {
    $Q or $Q = $Default->new;
    return $Q;
}

sub self_or_default {
    return @_ if defined $_[0] and !ref $_[0] and $_[0] eq 'FCGI::ProcManager::XS';
    if (!defined $_[0] or !(ref $_[0] and UNIVERSAL::isa($_[0], 'FCGI::ProcManager::XS'))) {
        unshift @_, _default_object();
    }
    return wantarray ? @_ : $Q;
}

## the manager

sub pm_manage {
    my ($this, %values) = self_or_default(@_);
    $this->pm_parameter($_, $values{$_}) for sort keys %values;
    my $became = $this->{_handle}->manage;
    return $this->{_handle}->serve_from_worker if $became eq 'worker';
    return if $became eq 'single';
    exit $this->{_handle}->exit_status;  # the manager is done: its exit is Perl's
}

# Called by the library in the manager before the first fork, and in each worker
# before pm_manage returns there. The library has already done what the original's
# do here (signals, title, pid file); a subclass adds to them.
sub managing_init { }

sub handling_init {
    srand;  # each worker its own random sequence, as in the original
}

sub pm_die {
    my ($this, $msg, $n) = self_or_default(@_);
    _end($this, 'die', $msg, $n);
}

sub pm_wait {
    my ($this) = self_or_default(@_);
    return $this->{_handle}->wait;
}

sub pm_write_pid_file {
    my ($this, $fname) = self_or_default(@_);
    return $this->{_handle}->write_pid_file($fname) == 0 ? 1 : undef;
}

sub pm_remove_pid_file {
    my ($this, $fname) = self_or_default(@_);
    return $this->{_handle}->remove_pid_file($fname) == 0 ? 1 : 0;
}

# The original's signal plumbing: here the library's handlers do the work. These
# let code that called them directly act as the library would on that signal.
sub sig_sub {
    $SIG_CODEREF->(@_) if ref $SIG_CODEREF;
}

sub sig_manager {
    my ($this, $name) = @_;
    $this->{_handle}->manager_signal($name) or $this->pm_notify("ignoring signal $name");
}

sub sig_handler {
    my ($this, $name) = @_;
    $this->{_handle}->worker_signal($name);
}

## the workers (pm_pre_dispatch and pm_post_dispatch are in XS.xs)

sub pm_change_process_name {
    my ($this, $name) = self_or_default(@_);
    $this->{_handle}->change_process_name($name);
}

sub pm_received_signal {
    my ($this, $sig, $received) = self_or_default(@_);
    $this->sig_handler($sig) if $sig and $received;
    my $count = $this->{_handle}->signal_counts;
    return $sig ? $count->{$sig} || undef : $count;
}

## parameters

sub pm_parameter {
    my ($this, $key, $value) = self_or_default(@_);
    if (defined $value) {
        $this->_to_library($key, $value);
        $this->{$key} = $value;
    }
    return $this->{_handle}->role if $key eq 'role';
    return $this->{$key};
}

sub n_processes { shift->pm_parameter('n_processes', @_); }
sub pid_fname   { shift->pm_parameter('pid_fname',   @_); }
sub no_signals  { shift->pm_parameter('no_signals',  @_); }
sub die_timeout { shift->pm_parameter('die_timeout', @_); }
sub role        { shift->pm_parameter('role',        @_); }
sub start_delay { shift->pm_parameter('start_delay', @_); }

## notification and death

sub pm_warn {
    my ($this, $msg) = self_or_default(@_);
    $this->pm_notify($msg);
}

# Prints "FastCGI: <role> (pid <pid>): <msg>" on STDERR (the library formats it).
# Every line the library logs comes here first, without that prefix: a subclass's
# pm_notify sees each one, as with the original.
sub pm_notify {
    my ($this, $msg) = self_or_default(@_);
    $this->{_handle}->notify(defined $msg ? $msg : '');
}

sub pm_exit {
    my ($this, $msg, $n) = self_or_default(@_);
    _end($this, 'exit', $msg, $n);
}

sub pm_abort {
    my ($this, $msg, $n) = self_or_default(@_);
    _end($this, 'abort', $msg, $n);
}

# The manager's own decision to end (TERM: how 0, "safe exit from signal TERM"; the
# die timeout: how 1, "wait timeout"): a subclass's pm_die or pm_abort is called, as
# the original calls them; without one the library goes on by itself.
sub _end_from_library {
    my ($this, $how, $msg, $status) = @_;
    my $method = $how ? 'pm_abort' : 'pm_die';
    return if $this->can($method) == FCGI::ProcManager::XS->can($method);
    $this->$method($msg, $status);
}

# The library stops what it must and logs; the exit is Perl's ($@ set as the
# original sets it).
sub _end {
    my ($this, $how, $msg, $n) = @_;
    $msg = '' unless defined $msg;
    my $handle = $this->{_handle};
    my $status = $handle->end($how, $msg, $n || 0);
    # From a hook (managing_init, a %SIG handler in the manager, ...): the library
    # unwinds, and pm_manage exits with the status.
    die FCGI::ProcManager::XS::Exiting->new($status) if $handle->in_hook;
    $@ = $how eq 'die' ? "dying: $msg" : $msg;
    exit $status;
}

# What both interfaces' signal methods do, as the library would on that signal.
package FCGI::ProcManager::XS::Handle;

# In the manager: TERM stops, HUP reloads (true); any other signal is not its (false).
sub manager_signal {
    my ($handle, $name) = @_;
    if ($name eq 'TERM') {
        $handle->request_stop(POSIX::SIGTERM());
    } elsif ($name eq 'HUP') {
        $handle->request_reload;
    } else {
        return 0;
    }
    return 1;
}

# In a worker: a stop, as by TERM (or HUP).
sub worker_signal {
    my ($handle, $name) = @_;
    $handle->request_stop($name eq 'HUP' ? POSIX::SIGHUP() : POSIX::SIGTERM());
}

# In a new worker: FCGI.pm's Accept runs between the library's accept_begin and
# accept_end from now on (a stop then ends even its wait on a connection the web
# server keeps alive, see pm_accept_begin in fcgi_pm.h), and each request it accepts
# is named for the live status (its method, URI and client, from the request's
# environment), for this handle and in this process only. Returns 1, pm_manage's
# value in a worker.
my ($fcgi_accept, $accepting, $accepting_pid);
sub serve_from_worker {
    my ($handle) = @_;
    Scalar::Util::weaken($accepting = $handle);  # freed with its object
    $accepting_pid = $$;
    return 1 if $fcgi_accept || !defined &FCGI::Accept;
    $fcgi_accept = \&FCGI::Accept;
    no warnings 'redefine';
    *FCGI::Accept = sub {
        my $h = $accepting;
        return $fcgi_accept->(@_) unless $h && $$ == $accepting_pid;
        if ($h->accept_begin) {  # stopping: end the loop, as Accept would after a stop
            $_[0]->Finish;
            return -1;
        }
        my $rc = $fcgi_accept->(@_);
        $h->accept_end;
        $h->name_request($_[0]->GetEnvironment) if $rc >= 0;
        return $rc;
    };
    return 1;
}

# { TERM => n, HUP => n }: how many times each was received in this process.
sub signal_counts {
    my ($handle) = @_;
    return { TERM => $handle->received_signal(POSIX::SIGTERM()), HUP => $handle->received_signal(POSIX::SIGHUP()) };
}

package FCGI::ProcManager::XS::Exiting;
sub new { my ($class, $status) = @_; return bless { status => $status }, $class }

1;
__END__

=head1 NAME

FCGI::ProcManager::XS - FCGI::ProcManager on libfcgi-pm, the C FastCGI process manager

=head1 SYNOPSIS

  use FCGI;
  use FCGI::ProcManager::XS;   # was: use FCGI::ProcManager;

  my $pm = FCGI::ProcManager::XS->new({ n_processes => 4, pid_fname => '/run/app.pid' });
  my $socket  = FCGI::OpenSocket('/run/app.sock', 128);
  my $request = FCGI::Request(\*STDIN, \*STDOUT, \*STDERR, \%ENV, $socket);
  $pm->pm_manage;
  while ($request->Accept >= 0) {
      $pm->pm_pre_dispatch;
      print "Content-Type: text/plain\r\n\r\nhello\n";
      $pm->pm_post_dispatch;
  }

With Plack: C<plackup -s FCGI --nproc 4 --manager FCGI::ProcManager::XS app.psgi>.

=head1 DESCRIPTION

The whole interface of L<FCGI::ProcManager> 0.28 - the constructor and its
parameters, every C<pm_*> method, the accessors, the functional interface with the
same exports and default object, and subclassing - on the C library libfcgi-pm. A
program changes its C<use> line and nothing else: the log lines, exit codes and
hooks are the original's. What changes is underneath:

=over

=item * the manager reaps in an event loop, not in signal handlers: a HUP during a
stop does not kill it, and no TERM is lost between a request and the next accept;

=item * the pid file is locked (a second manager is refused), written atomically and
removed only with the last worker;

=item * a worker whose manager died (even by SIGKILL) stops at once when idle, after
its request when busy; a worker crashing at start is respawned with backoff; a
failed fork is retried;

=item * C<pm_pre_dispatch> and C<pm_post_dispatch> make no system call, and a request
in progress is never interrupted by the manager's TERM or HUP.

=back

=head1 MIGRATION

Replace C<FCGI::ProcManager> by C<FCGI::ProcManager::XS> (and
C<FCGI::ProcManager::Constrained> by L<FCGI::ProcManager::XS::Constrained>).

=head1 METHODS

As in L<FCGI::ProcManager>: C<new>, C<pm_manage>, C<managing_init>, C<pm_die>,
C<pm_wait>, C<pm_write_pid_file>, C<pm_remove_pid_file>, C<sig_sub>,
C<sig_manager>, C<handling_init>, C<pm_pre_dispatch>, C<pm_post_dispatch>,
C<sig_handler>, C<self_or_default>, C<pm_change_process_name>,
C<pm_received_signal>, C<pm_parameter>, C<n_processes>, C<no_signals>,
C<pid_fname>, C<die_timeout>, C<role>, C<start_delay>, C<pm_warn>, C<pm_notify>,
C<pm_exit>, C<pm_abort>. Each is callable as a method or, where the original
exports it, as a function on the default object.

The library's other parameters (C<start_timeout>, C<max_requests>,
C<status_socket>, ...; see the libfcgi-pm README) may be passed to C<new> or
C<pm_parameter> as well. A value the library refuses dies with its message
("FCGI::ProcManager::XS: ...") and changes nothing.

=head1 REQUEST LIMITS AND RECYCLING

The library's manager enforces these parameters itself, reading each worker's
requests from the live status (see below), for FCGI.pm loops unchanged:
C<request_timeout> (seconds: a worker whose request runs that long is stopped,
logged with the request's URI and replaced; without C<no_signals> it dies of the
manager's TERM inside the request, so no C<END> block or destructor runs in it;
KILL follows
C<request_timeout_grace> seconds later, default 1), C<request_slow> (seconds: such a
request is logged and counted; below C<request_timeout>), C<max_requests_jitter>
(each worker's C<max_requests> raised by a random 0..N of its own, so that workers
started together do not all leave together), C<max_age> (seconds) and C<max_rss>
(KB resident, checked once a second): a worker past either is replaced, its
replacement started first, and leaves after its request. 0 (the default) turns
each off. They are checked together by C<pm_manage>, which dies with the library's
message naming them (C<max_requests_jitter> without C<max_requests>,
C<request_timeout_grace> without C<request_timeout>, C<request_timeout>,
C<request_slow> or C<max_rss> with C<scoreboard> 0). Like C<max_requests>, the
base class ignores C<PM_MAX_REQUESTS_JITTER>; L<FCGI::ProcManager::XS::Constrained>
takes it.

=head1 LIVE STATUS

C<fcgi-pm status> (the libfcgi-pm program) shows a running pool: each worker's
state, and the method, URI and client address of its current or last request. A
worker names each request that FCGI.pm's C<Accept> gives it, from the request's
environment (C<REQUEST_METHOD>, C<REQUEST_URI>, C<REMOTE_ADDR>), before
C<pm_pre_dispatch>. The library's parameters for it, passed to C<new> like the
others: C<scoreboard> (0: the workers write nothing of their requests there),
C<status_socket> (a unix socket where the manager also hands the status out, for
readers of another user) and C<status_group> (the group allowed on it, not used
without one; a group the system does not have makes C<pm_manage> die).

=head1 SIGNALS

Without C<no_signals>, TERM and HUP are the library's in the manager and in the
workers, as they are the original's. Every other C<%SIG> handler of the program
stays its own and runs in the manager too (the library's wait gives Perl's
deferred handlers their turn). With C<no_signals> 1 nothing is touched: a
program's own TERM handler may call C<pm_die>, and the manager stops its pool in
order. C<pm_die>, C<pm_exit> and C<pm_abort> may be called from a hook
(C<managing_init>, C<handling_init>, a handler in the manager): the library
unwinds, and C<pm_manage> exits with the status asked for.

=head1 SUBCLASSING

C<managing_init> runs in the manager before the first fork and C<handling_init> in
each worker before C<pm_manage> returns, as in the original; the library has already
set the signals, the title and the pid file, so C<SUPER::> calls are harmless but
not needed. Every line the library logs is passed to C<pm_notify> (without the
C<FastCGI: role (pid N): > prefix, which the base method adds). An overridden
C<pm_die> is called when the manager stops (TERM), and C<pm_abort> at the die
timeout. C<pm_pre_dispatch>, C<pm_post_dispatch>, C<pm_die>, C<pm_exit> and
C<pm_abort> may call C<SUPER::>.

An exception in C<managing_init> or C<handling_init> is logged and rethrown by
C<pm_manage> in that process (the manager's set-up undone: no pid file left); one in
C<pm_notify> is reported on STDERR with the line it was given.

=head1 DIFFERENCES FROM FCGI::ProcManager

Only its bugs are fixed (see libfcgi-pm's README, "Where fcgi-pm differs"):

=over

=item * TERM and HUP are handled by the library: the manager's stop and reload,
and a worker's end after its request, do not run through C<sig_manager> or
C<sig_handler> (those still act as the library would when called). An
overridden C<pm_die> is called at the stop and C<pm_abort> at the die timeout,
as the original calls them; one that returns without calling C<SUPER::> does not
cancel the stop (the original's manager would go on serving). The manager's wait
for its workers is the library's, not C<pm_wait>.

=item * Workers SIGKILLed at the die timeout are reaped and logged
(C<exited with status 9>).

=item * C<pm_abort(msg, n)> exits with I<n> when it is non-zero (the original
always exits 1).

=item * A worker's system calls are restarted after the library's signal, so a
request is never cut short (the original lets a signal between requests
interrupt the write of the last reply). An idle worker waiting inside FCGI.pm's
C<Accept> for the next request on a connection the web server keeps alive
(nginx's C<fastcgi_keep_conn on>) still stops at once: in a worker, the module
runs C<FCGI::Accept> between the library's C<pm_accept_begin> and
C<pm_accept_end>, and the library ends that wait by shutting down the read side
of that connection (on x86_64; on other architectures such a worker leaves when
the server closes the connection, or at the die timeout). A stop that comes
before C<Accept> makes it finish the last request and return -1, which ends the
loop.

=back

The exits are Perl's: END blocks and destructors run in the process that exits,
and buffered output is flushed before each fork.

=cut
