//! The simulator: scenarios, virtual-time runs and load over the wire.
