//! The Gofer: the confined file server, its protocol, and the Sentry's client.
#![deny(unsafe_code)]
