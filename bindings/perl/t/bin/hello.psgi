# A PSGI hello: the worker's pid in the body.
sub { [200, ['Content-Type' => 'text/plain'], ["hello from $$\n"]] };
