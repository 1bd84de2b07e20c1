#!/usr/bin/perl
# An FCGI::Engine application: its handler answers "Hello from worker <pid>".
# Usage: engine.pl --listen SOCKET --nproc N --pidfile FILE --manager CLASS
# With APP_LOG set, TestEngineSubclass (t/lib) notes its augments there.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";

package Hello;
sub handler {
    print "Content-Type: text/plain\r\n\r\nHello from worker $$\n";
}

package main;
use FCGI::Engine;
my $app_log = $ENV{APP_LOG};  # FCGI::Engine gives each request %ENV as its environment
sub note_event {
    my ($what) = @_;
    return unless $app_log;
    open my $fh, '>>', $app_log or die "$app_log: $!";
    print $fh "$what\n";
    close $fh;
}
FCGI::Engine->new_with_options(handler_class => 'Hello')->run;
