#!/usr/bin/perl
# The benchmark's Perl responder under FCGI::ProcManager 0.28.
# Usage: pm.pl SOCKET N_PROCESSES. With BENCH_CRASH_LOG set, each worker appends a
# line to that file and exits 1 at start.
use strict;
use warnings;
use FCGI;
use FCGI::ProcManager;
my ($path, $n) = @ARGV;
my $socket = FCGI::OpenSocket($path, 128);
my $request = FCGI::Request(\*STDIN, \*STDOUT, \*STDERR, \%ENV, $socket);
my $pm = FCGI::ProcManager->new({n_processes => $n});
$pm->pm_manage();
crash() if $ENV{BENCH_CRASH_LOG};
while ($request->Accept() >= 0) {
    $pm->pm_pre_dispatch();
    print "Content-Type: text/plain\r\n\r\nHello from worker $$\n";
    $pm->pm_post_dispatch();
}
sub crash {
    open(my $f, '>>', $ENV{BENCH_CRASH_LOG}) or exit 1;
    print $f "$$\n";
    close $f;
    exit 1;
}
