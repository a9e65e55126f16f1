//! Unit tests of Unix sockets.
