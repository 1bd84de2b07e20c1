package FCGI::Engine::ProcManager::XS;
# FCGI::Engine::ProcManager's interface (FCGI-Engine 0.22) on libfcgi-pm: the same
# Moose attributes and methods, and augment-able manager_init, server_init,
# pre_dispatch and post_dispatch; the manager itself is the C library's, through
# the handle FCGI::ProcManager::XS provides.
use Moose;
use POSIX ();
use FCGI::Engine::Types;
use MooseX::Daemonize::Pid::File;
use FCGI::ProcManager::XS ();

our $VERSION = '0.22';

# The attribute a library parameter follows (set at construction, and on change).
my %library_name = (n_processes => 'n_processes', die_timeout => 'die_timeout',
                    start_delay => 'start_delay', no_signals => 'no_signals');

has 'role' => (is => 'rw', isa => 'FCGI::Engine::ProcManager::Role', default => sub { 'manager' });
has 'start_delay' => (is => 'rw', isa => 'Int', default => sub { 0 }, trigger => sub { $_[0]->_follow(start_delay => @_[1, 2]) });
has 'die_timeout' => (is => 'rw', isa => 'Int', default => sub { 60 }, trigger => sub { $_[0]->_follow(die_timeout => @_[1, 2]) });
has 'n_processes' => (is => 'rw', isa => 'Int', default => sub { 0 }, trigger => sub { $_[0]->_follow(n_processes => @_[1, 2]) });
has 'pidfile' => (is => 'rw', isa => 'MooseX::Daemonize::Pid::File', trigger => sub { $_[0]->_pidfile_to_library });
has 'no_signals' => (is => 'rw', isa => 'Bool', default => sub { 0 }, trigger => sub { $_[0]->_follow(no_signals => @_[1, 2]) });
# The original's sigactions: kept for code that reads them; the library's handlers act.
has 'sigaction_no_sa_restart' => (is => 'rw', isa => 'POSIX::SigAction');
has 'sigaction_sa_restart'    => (is => 'rw', isa => 'POSIX::SigAction');
has 'signals_received' => (is => 'rw', isa => 'HashRef', default => sub { +{} });
has 'manager_pid' => (is => 'rw', isa => 'Int');
# The manager's workers, as the library starts and reaps them.
has 'server_pids' => (
    traits  => ['Hash'],
    is      => 'rw',
    isa     => 'HashRef',
    clearer => 'forget_all_pids',
    default => sub { +{} },
    handles => {
        '_add_pid'     => 'set',
        'get_all_pids' => 'keys',
        'remove_pid'   => 'delete',
        'has_pids'     => 'count',
        'pid_count'    => 'count',
    },
);
sub add_pid { (shift)->_add_pid(@_, 1) }
has 'process_name'         => (is => 'ro', isa => 'Str', default => sub { 'perl-fcgi' });
has 'manager_process_name' => (is => 'ro', isa => 'Str', default => sub { 'perl-fcgi-pm' });

sub BUILD {
    my $self = shift;
    my $handle = $self->{_handle} = FCGI::ProcManager::XS::Handle->new(
        $self, '_manager_init_from_library', '_server_init_from_library', '_line_from_library',
        '_end_from_library');
    $handle->set(process_name => $self->process_name);
    $handle->set(pm_title => $self->manager_process_name);
    $self->_limits;
    $self->_to_library($_ => $self->$_) for sort keys %library_name;
    $self->_pidfile_to_library;
}

# FCGI::Engine::ProcManager has no request or size limits (the Constrained class has;
# max_requests_jitter too, which the library refuses without max_requests).
sub _limits {
    my $self = shift;
    $self->{_handle}->set($_ => 0) for qw(max_requests max_requests_jitter max_size sizecheck_num_requests);
}

sub _to_library {
    my ($self, $name, $value) = @_;
    return unless $self->{_handle} && defined $value;
    $value = $value ? 1 : 0 if $name eq 'no_signals';
    $self->{_handle}->set($library_name{$name} || $name, "$value");
}

# An attribute's change, given to the library; refused there, the old value is put
# back and the library's message thrown.
sub _follow {
    my ($self, $name, $new, $old) = @_;
    return if eval { $self->_to_library($name => $new); 1 };
    my $error = $@;
    $self->meta->find_attribute_by_name($name)->set_raw_value($self, $old);
    CORE::die $error;
}

sub _pidfile_to_library {
    my $self = shift;
    return unless $self->{_handle};
    $self->{_handle}->set(pid_fname => $self->pidfile ? '' . $self->pidfile->file : '');
}

## main loop

sub manage {
    my $self = shift;
    $self->n_processes or return;
    my $became = $self->{_handle}->manage;
    return $self->{_handle}->serve_from_worker if $became eq 'worker';
    return if $became eq 'single';
    CORE::exit($self->{_handle}->exit_status);
}

## the library's events

sub _manager_init_from_library {
    my $self = shift;
    $self->change_process_name;
    $self->manager_init;
}

sub _server_init_from_library {
    my $self = shift;
    $self->meta->find_attribute_by_name('role')->set_raw_value($self, 'server');  # the library's role now
    $self->manager_pid(getppid());
    $self->forget_all_pids;
    $self->change_process_name;
    $self->server_init;
}

sub _line_from_library {
    my ($self, $msg) = @_;
    if ($msg =~ /^server \(pid (\d+)\) started$/) {
        $self->add_pid($1);
    } elsif ($msg =~ /^server \(pid (\d+)\) exited with status/) {
        $self->remove_pid($1);
    }
    $self->notify($msg);
}

# The manager's own decision to end: an overridden die or abort has its say.
sub _end_from_library {
    my ($self, $how, $msg, $status) = @_;
    my $method = $how ? 'abort' : 'die';
    return if $self->can($method) == FCGI::Engine::ProcManager::XS->can($method);
    $self->$method($msg, $status);
}

## initializers and hooks: the library has done the original's work (signals,
## title, pid file) before these run; subclasses augment them

sub manager_init { inner() }
sub server_init  { inner() }

# The request path: inner() only when a subclass augments (Moose's inner() finds
# the augment in %Moose::INNER_BODY; calling it for nothing would double the cost).
sub pre_dispatch {
    $_[0]{_handle}->pre_dispatch;
    inner() if $Moose::INNER_BODY{+__PACKAGE__};
}

sub post_dispatch {
    $_[0]{_handle}->post_dispatch;
    inner() if $Moose::INNER_BODY{+__PACKAGE__};
}

## utils

sub setup_signal_actions { }
sub setup_signal_handler { }
sub clear_signal_handler { }
sub sig_sub { }

sub manager_sig_handler {
    my ($self, $name) = @_;
    $self->{_handle}->manager_signal($name) or $self->notify("ignoring signal $name");
}

sub server_sig_handler {
    my ($self, $name) = @_;
    $self->{_handle}->worker_signal($name);
}

sub received_signal {
    my ($self, $sig, $received) = @_;
    $self->server_sig_handler($sig) if $sig and $received;
    my $count = $self->{_handle}->signal_counts;
    $self->signals_received->{$_} = $count->{$_} || undef for keys %$count;
    return $self->signals_received unless $sig;
    return $self->signals_received->{$sig};
}

sub change_process_name {
    my $self = shift;
    $self->{_handle}->change_process_name(
        $self->role eq 'manager' ? $self->manager_process_name : $self->process_name);
}

sub wait : method {
    my $self = shift;
    return $self->{_handle}->wait;
}

## notification

sub notify {
    my ($self, $msg) = @_;
    $self->{_handle}->notify(defined $msg ? $msg : '');
}

## error/exit handlers: the library stops what it must and logs; Perl exits

sub die : method {
    my ($self, $msg, $n) = @_;
    $self->_end('die', $msg, $n);
}

sub abort {
    my ($self, $msg, $n) = @_;
    $self->_end('abort', $msg, $n);
}

sub exit : method {
    my ($self, $msg, $n) = @_;
    $self->_end('exit', $msg, $n);
}

sub _end {
    my ($self, $how, $msg, $n) = @_;
    $msg = '' unless defined $msg;
    my $handle = $self->{_handle};
    my $status = $handle->end($how, $msg, $n || 0);
    CORE::die(FCGI::ProcManager::XS::Exiting->new($status)) if $handle->in_hook;  # see FCGI::ProcManager::XS
    $@ = $how eq 'die' ? "dying: $msg" : $msg;
    CORE::exit($status);
}

__PACKAGE__->meta->make_immutable;
no Moose;
1;
__END__

=head1 NAME

FCGI::Engine::ProcManager::XS - FCGI::Engine::ProcManager on libfcgi-pm

=head1 SYNOPSIS

  # FCGI::Engine, from the command line:
  perl app.fcgi --listen /run/app.sock --nproc 4 --pidfile /run/app.pid \
       --manager FCGI::Engine::ProcManager::XS

  # or in code:
  FCGI::Engine->new_with_options(handler_class => 'MyApp',
                                 manager => 'FCGI::Engine::ProcManager::XS')->run;

=head1 DESCRIPTION

The interface of L<FCGI::Engine::ProcManager> (FCGI-Engine 0.22): the same Moose
attributes (C<role>, C<start_delay>, C<die_timeout>, C<n_processes>, C<pidfile>,
C<no_signals>, C<manager_pid>, C<process_name>, C<manager_process_name>,
C<server_pids> and its methods C<add_pid>, C<get_all_pids>, C<remove_pid>,
C<has_pids>, C<pid_count>, C<forget_all_pids>, C<signals_received>, ...), the same
methods (C<manage>, C<pre_dispatch>, C<post_dispatch>, C<notify>, C<die>,
C<exit>, C<abort>, C<wait>, C<received_signal>, C<change_process_name>) and
C<augment>-able C<manager_init>, C<server_init>, C<pre_dispatch> and
C<post_dispatch>, on the C library libfcgi-pm, as L<FCGI::ProcManager::XS> does for
FCGI::ProcManager. The log lines and exit codes are the original's.

=head1 MIGRATION

Pass C<--manager FCGI::Engine::ProcManager::XS> to an FCGI::Engine script (or
C<manager =E<gt> 'FCGI::Engine::ProcManager::XS'>), and
L<FCGI::Engine::ProcManager::XS::Constrained> for FCGI::Engine's Constrained
manager.

=head1 DIFFERENCES FROM FCGI::Engine::ProcManager

Those of L<FCGI::ProcManager::XS> (the library's signal handling, stop and pid file),
and two of the original's own bugs fixed: C<start_delay> applies to every fork (the
original's loop forks only the first worker of a start-up), and a stop without a
pid file does not throw inside the TERM handler. C<server_pids> follows the
library's starts and reaps; changing it changes nothing of the pool.

=cut
