//! Collectors: read-only probes run over the transport, and the pure parsers that turn
//! their output into typed state. Parsers never do I/O; collectors never build mutating
//! commands.
