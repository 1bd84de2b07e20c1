# The whole public interface of FCGI::ProcManager 0.28 (and its Constrained
# variant) is there, with the same exports.
use strict;
use warnings;
use Test::More;
use FCGI::ProcManager;
use FCGI::ProcManager::Constrained;
use FCGI::ProcManager::XS;
use FCGI::ProcManager::XS::Constrained;

sub subs_of {
    my ($package) = @_;
    no strict 'refs';
    return sort grep { !/^(BEGIN|import|isa|can|VERSION|DOES|__ANON__)$/ && !/^_/ && defined &{"${package}::$_"} }
        keys %{"${package}::"};
}

my %imported = map { $_ => 1 } qw(sigaction);  # the original's imports from POSIX
my @original = grep { !$imported{$_} && !/^(SIG_|SA_|SIG[A-Z]|sig[a-z]+set|sigpending|sigprocmask|sigsuspend)/ }
    subs_of('FCGI::ProcManager');
ok(@original > 20, 'found the original\'s methods (' . scalar(@original) . ')');
for my $method (@original) {
    ok(FCGI::ProcManager::XS->can($method), "FCGI::ProcManager::XS can $method");
}
for my $method (qw(max_requests sizecheck_num_requests max_size)) {
    ok(FCGI::ProcManager::XS::Constrained->can($method), "::Constrained can $method");
}
is_deeply([sort @FCGI::ProcManager::XS::EXPORT_OK], [sort @FCGI::ProcManager::EXPORT_OK], 'same exports');
is_deeply([sort @{$FCGI::ProcManager::XS::EXPORT_TAGS{all}}], [sort @{$FCGI::ProcManager::EXPORT_TAGS{all}}],
          'same :all tag');
ok(FCGI::ProcManager::XS::Constrained->isa('FCGI::ProcManager::XS'), 'Constrained is a subclass');
like(FCGI::ProcManager::XS::Library::version(), qr/^\d+\.\d+\.\d+$/, 'library version');
done_testing;
