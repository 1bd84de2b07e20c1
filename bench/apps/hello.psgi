# The PSGI hello of the Perl throughput rows (plackup -s FCGI): a fixed body.
sub { [200, ['Content-Type' => 'text/plain'], ["Hello, world!\n"]] };
