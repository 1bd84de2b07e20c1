#!/usr/bin/perl
# A FastCGI program nobody here wrote the manager for: Perl's FCGI, on fd 0.
use strict;
use warnings;
use Cwd;
use FCGI;
my $req = FCGI::Request();
while ($req->Accept() >= 0) {
    print "Content-Type: text/plain\r\n\r\nHello from Perl $$ in ", getcwd(), "\n";
}
