package FCGI::Engine::ProcManager::XS::Constrained;
# FCGI::Engine::ProcManager::Constrained on libfcgi-pm: the limits are the library's.
use Moose;
extends 'FCGI::Engine::ProcManager::XS';

our $VERSION = '0.22';

has max_requests => (isa => 'Int', is => 'ro', default => sub { $ENV{PM_MAX_REQUESTS} || 0 });
has request_count => (
    isa      => 'Int',
    is       => 'ro',
    traits   => ['Counter'],
    handles  => { _reset_request_counter => 'reset', _inc_request_counter => 'inc' },
    init_arg => undef,
    default  => 0,
);
has [qw(sizecheck_num_requests max_process_size min_share_size max_unshared_size)] =>
    (isa => 'Int', is => 'ro', default => 0);

# The library checks them after each request, with the original's log lines.
sub _limits {
    my $self = shift;
    my $handle = $self->{_handle};
    $handle->set(max_requests => $self->max_requests);
    $handle->set(sizecheck_num_requests => $self->sizecheck_num_requests);
    $handle->set(max_size => $self->max_process_size);
    $handle->set(min_share_size => $self->min_share_size);
    $handle->set(max_unshared_size => $self->max_unshared_size);
}

augment server_init => sub { $_[0]->_reset_request_counter };
augment post_dispatch => sub { $_[0]->_inc_request_counter };

__PACKAGE__->meta->make_immutable;
no Moose;
1;
__END__

=head1 NAME

FCGI::Engine::ProcManager::XS::Constrained - FCGI::Engine::ProcManager::Constrained on libfcgi-pm

=head1 SYNOPSIS

  perl app.fcgi --listen /run/app.sock --nproc 4 --pidfile /run/app.pid \
       --manager FCGI::Engine::ProcManager::XS::Constrained

=head1 DESCRIPTION

L<FCGI::Engine::ProcManager::XS> with the attributes of
L<FCGI::Engine::ProcManager::Constrained>: C<max_requests> (default from
C<PM_MAX_REQUESTS>), C<request_count>, C<sizecheck_num_requests>,
C<max_process_size>, C<min_share_size> and C<max_unshared_size> (KB, from
C</proc/self/statm>). The library checks them after each request, as the
original's C<post_dispatch> does, and logs the original's lines.

=cut
