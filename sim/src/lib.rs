//! The simulation engine (world, scheduler, network, faults, checkers, trace); not built yet — see issue 6.
