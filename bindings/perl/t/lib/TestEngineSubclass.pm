package TestEngineSubclass;
# FCGI::Engine::ProcManager::XS (or TEST_BASE) with every augment-able method
# augmented, each noting its call in APP_LOG.
use Moose;
BEGIN { my $base = $ENV{TEST_BASE} || 'FCGI::Engine::ProcManager::XS'; eval "require $base; 1" or die $@ }
extends $ENV{TEST_BASE} || 'FCGI::Engine::ProcManager::XS';

augment manager_init  => sub { main::note_event("augment manager_init $$ role " . $_[0]->role) };
augment server_init   => sub { main::note_event("augment server_init $$ role " . $_[0]->role . " manager " . $_[0]->manager_pid) };
augment pre_dispatch  => sub { main::note_event("augment pre_dispatch $$") };
augment post_dispatch => sub { main::note_event("augment post_dispatch $$") };

no Moose;
1;
