#!/usr/bin/perl
# The reference: FCGI::ProcManager(::Constrained) running the same application as
# tests/process/worker_app.c, with the same arguments and environment knobs. With
# COMPAT_PM_CLASS set, that class instead (the Perl binding's, side by side).
use strict;
use warnings;
use FCGI;
my $class;
BEGIN {
    $class = $ENV{COMPAT_PM_CLASS} || 'FCGI::ProcManager::Constrained';
    eval "require $class; 1" or die $@;
}
use Time::HiRes qw(sleep);

my ($path, @params) = @ARGV;
my %param = map { split /=/, $_, 2 } @params;
my $sock = FCGI::OpenSocket($path, 128);
my %env;
my $req = FCGI::Request(\*STDIN, \*STDOUT, \*STDERR, \%env, $sock);
my $pm = $class->new(\%param);
$pm->pm_manage();
POSIX::_exit(3) if $ENV{WORKER_APP_CRASH_AT_START};
if ($ENV{WORKER_APP_BLOCK_TERM}) {
    POSIX::sigprocmask(POSIX::SIG_BLOCK(), POSIX::SigSet->new(POSIX::SIGTERM(), POSIX::SIGHUP()));
}
while ($req->Accept() >= 0) {
    $pm->pm_pre_dispatch();
    my ($ms) = ($env{QUERY_STRING} // '') =~ /sleep_ms=(\d+)/;
    print "Content-Type: text/plain\r\n\r\n";
    sleep($ms / 1000) if $ms;
    print "Hello from worker $$\n";
    $req->Finish();
    $pm->pm_post_dispatch();
}
# A worker deaf to TERM stays, as worker_app does, until SIGKILL.
if ($ENV{WORKER_APP_BLOCK_TERM}) {
    POSIX::pause() while 1;
}
