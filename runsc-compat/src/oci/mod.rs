//! The OCI runtime: the container lifecycle commands, the bundle's `config.json`, and the
//! state under `--root`.

pub mod cgroups;
pub mod commands;
pub mod config;
pub mod events;
pub mod exec;
pub mod features;
pub mod hooks;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sysctl;
