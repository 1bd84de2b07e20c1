#!/usr/bin/perl
# The application the tests run: a plain FCGI.pm loop on a process manager.
# Usage: app.pl SOCKET [name=value ...]   (the parameters go to new)
# Environment:
#   PM_CLASS     the manager's class (default FCGI::ProcManager::XS);
#   APP_LOG      a file each process appends its own events to ("END <pid>",
#                "DESTROY <pid>", "hook <name> <pid>", ...), besides STDERR's lines;
#   APP_SUBCLASS 1: the manager is TestSubclass (t/lib), overriding every hook;
#   APP_DIE_IN   managing_init or handling_init: that hook dies (in TestSubclass);
#   APP_PRINT    printed to STDOUT, unflushed, before pm_manage;
#   APP_USR1     1: a %SIG{USR1} handler in every process logs "usr1 <pid>";
#   APP_TERM_DIES 1: a %SIG{TERM} handler calls pm_die (for no_signals 1);
#   APP_EXIT_IN  managing_init or handling_init: that hook calls pm_exit (TestSubclass).
# Requests (QUERY_STRING): sleep_ms=M sleeps M ms first (noted as "busy <pid>");
# wait_for=FILE waits (at most 20 s) until FILE exists; the answer is
# "Hello from worker <pid> title <$0> usr1 <count>".
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use FCGI;
use Time::HiRes qw(sleep);

my ($path, @params) = @ARGV;
my %param = map { split /=/, $_, 2 } @params;
my $class = $ENV{PM_CLASS} || 'FCGI::ProcManager::XS';
$class = 'TestSubclass' if $ENV{APP_SUBCLASS};
eval "require $class; 1" or die $@;

sub note_event {
    my ($what) = @_;
    return unless $ENV{APP_LOG};
    open my $fh, '>>', $ENV{APP_LOG} or die "$ENV{APP_LOG}: $!";
    print $fh "$what\n";
    close $fh;
}
my $usr1 = 0;
$SIG{USR1} = sub { $usr1++; note_event("usr1 $$") } if $ENV{APP_USR1};
END { note_event("END $$") }

my $sock = FCGI::OpenSocket($path, 128);
my %env;
my $req = FCGI::Request(\*STDIN, \*STDOUT, \*STDERR, \%env, $sock);
my $pm = $class->new(\%param);
$SIG{TERM} = sub { $pm->pm_die("stopped by the program's handler") } if $ENV{APP_TERM_DIES};
{
    package Guard;
    sub DESTROY { main::note_event("DESTROY $$") }
}
my $guard = bless {}, 'Guard';
print STDOUT $ENV{APP_PRINT} if defined $ENV{APP_PRINT};
$pm->pm_manage();
note_event("worker $$");
while ($req->Accept() >= 0) {
    $pm->pm_pre_dispatch();
    my ($ms) = ($env{QUERY_STRING} // '') =~ /sleep_ms=(\d+)/;
    print "Content-Type: text/plain\r\n\r\n";
    note_event("busy $$") if $ms;
    sleep($ms / 1000) if $ms;
    if (my ($file) = ($env{QUERY_STRING} // '') =~ /wait_for=([^&]+)/) {
        for (1 .. 2000) { last if -e $file; sleep 0.01 }
    }
    print "Hello from worker $$ title $0 usr1 $usr1\n";
    $req->Finish();
    $pm->pm_post_dispatch();
}
note_event("loop ended $$");
