package FCGI::ProcManager::XS::Constrained;
# FCGI::ProcManager::Constrained on libfcgi-pm: the request and size limits are the
# library's (its defaults come from PM_MAX_REQUESTS, PM_MAX_SIZE and
# PM_SIZECHECK_NUM_REQUESTS, as the original's).
use strict;
use warnings;
use base 'FCGI::ProcManager::XS';

our $VERSION = '0.28';

sub _limits_from_environment { }  # the library read them

sub max_requests           { shift->pm_parameter('max_requests',           @_); }
sub sizecheck_num_requests { shift->pm_parameter('sizecheck_num_requests', @_); }
sub max_size               { shift->pm_parameter('max_size',               @_); }

sub new {
    my $proto = shift;
    my $self = $proto->SUPER::new(@_);
    for my $key (qw(max_requests sizecheck_num_requests max_size)) {
        $self->{$key} = $self->{_handle}->get($key) unless defined $self->{$key};
    }
    return $self;
}

1;
__END__

=head1 NAME

FCGI::ProcManager::XS::Constrained - FCGI::ProcManager::Constrained on libfcgi-pm

=head1 SYNOPSIS

  use FCGI::ProcManager::XS::Constrained;   # was: FCGI::ProcManager::Constrained
  my $pm = FCGI::ProcManager::XS::Constrained->new({
      n_processes => 4, max_requests => 1000, max_size => 200_000,
      sizecheck_num_requests => 100 });

=head1 DESCRIPTION

L<FCGI::ProcManager::XS> with the parameters of L<FCGI::ProcManager::Constrained>:
C<max_requests> (a worker leaves after that many requests), C<max_size> (in KB: a
worker whose size exceeds it leaves, checked every C<sizecheck_num_requests>
requests), their defaults from C<PM_MAX_REQUESTS>, C<PM_MAX_SIZE> and
C<PM_SIZECHECK_NUM_REQUESTS> (and the library's C<max_requests_jitter> from
C<PM_MAX_REQUESTS_JITTER>), and their accessors. The checks are the library's,
after each request in C<pm_post_dispatch>, with the original's log lines
(C<safe exit after max_requests (N)>, C<safe exit due to memory limits exceeded
after N requests>). The size is read from C</proc/self/statm> without a module, so
C<sizecheck_num_requests> never needs Linux::Pid or Linux::Smaps.

=cut
