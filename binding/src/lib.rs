//! Sans-IO napi-rs binding to cloudflare's quiche for quichex.
//!
//! Nothing here opens sockets, spawns threads or keeps time beyond what quiche reads: JS hands
//! in datagrams and asks for datagrams, events and the next deadline. No panic may cross into
//! Node: failures of local calls are returned as JS errors with stable codes (`error.rs`),
//! anything a peer sends closes that peer's connection at worst, and every exported function is
//! `catch_unwind`, so that even a bug (ours or quiche's) surfaces as a JS exception, not an abort.

mod cert;
mod config;
mod connection;
mod endpoint;
mod error;
mod stats;

pub use cert::{generate_certificate, BindingCertificate};
pub use config::BindingConfig;
pub use endpoint::{BindingAddress, BindingCloseInfo, BindingConnInfo, BindingEndpoint};
