//! The typed state of a host and of the fleet, as gathered by the collectors.
