//! The syscall compatibility suite.
