package TestSubclass;
# A subclass overriding every hook of FCGI::ProcManager::XS (or of the class in
# TEST_BASE), each noting its call in APP_LOG and calling SUPER.
use strict;
use warnings;
our @ISA;
BEGIN {
    my $base = $ENV{TEST_BASE} || 'FCGI::ProcManager::XS';
    eval "require $base; 1" or die $@;
    @ISA = ($base);
}

sub note_event { main::note_event(@_) }

sub managing_init {
    my $self = shift;
    note_event("hook managing_init $$ role " . $self->role);
    die "managing_init failed on purpose\n" if ($ENV{APP_DIE_IN} || '') eq 'managing_init';
    $self->pm_exit("leaving from managing_init", 3) if ($ENV{APP_EXIT_IN} || '') eq 'managing_init';
    $self->SUPER::managing_init(@_);
}

sub handling_init {
    my $self = shift;
    note_event("hook handling_init $$ role " . $self->role . " title $0");
    die "handling_init failed on purpose\n" if ($ENV{APP_DIE_IN} || '') eq 'handling_init';
    $self->SUPER::handling_init(@_);
}

sub pm_pre_dispatch {
    my $self = shift;
    note_event("hook pm_pre_dispatch $$");
    $self->SUPER::pm_pre_dispatch(@_);
}

sub pm_post_dispatch {
    my $self = shift;
    note_event("hook pm_post_dispatch $$");
    $self->SUPER::pm_post_dispatch(@_);
}

sub pm_die {
    my ($self, $msg, $n) = @_;
    note_event("hook pm_die $$ $msg");
    $self->SUPER::pm_die("[sub] $msg", $n);
}

sub pm_abort {
    my ($self, $msg, $n) = @_;
    note_event("hook pm_abort $$ $msg");
    $self->SUPER::pm_abort("[sub] $msg", $n);
}

sub pm_notify {
    my ($self, $msg) = @_;
    note_event("hook pm_notify $$ $msg");
    $self->SUPER::pm_notify("[sub] $msg");
}

1;
