//! `hijack-conform`: the black-box conformance suite for HTTP/1.1 connection hijacking,
//! close-notify and framing (SPEC.md#conformance-endpoints, SPEC.md#conformance-vectors), as a
//! library and as the `hijack` binary (`hijack conform`, `hijack serve`).
//!
//! It tests any server that serves the few conformance endpoints, over TCP, and knows nothing
//! of the server beyond its address: every byte-level case is a [`Vector`] judged by the
//! runner from what arrives on the wire; the memory case reads `/stats`. The hostile-input
//! corpus (`conform/hostile/*.http`) is compiled in, so the suite is the same from any
//! folder.
//!
//! Testing a server from a Rust test, here the reference server of the [`hijack`] core with
//! the [`demo`] endpoints:
//!
//! ```no_run
//! use hijack_conform::{RunOptions, Suite, Verdict, demo::Demo};
//!
//! let demo = Demo::default();
//! let config = hijack::ServerConfig { on_state: Some(demo.state_hook()), ..Default::default() };
//! let server = hijack::Server::bind("127.0.0.1:0", config, demo)?;
//! let mut suite = Suite::all();
//! suite.select(&["handover/*", "hostile/*"], &[])?;
//! let report = suite.run(server.local_addr(), "my server", &RunOptions::default())?;
//! print!("{}", report.summary());
//! assert!(report.cases.iter().all(|c| c.verdict != Verdict::Fail));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Under `--cfg loom` (the core's models) this crate is empty.

#![cfg(not(loom))]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod cases;
pub mod connect;
pub mod demo;
pub mod explore;
pub mod hostile;
pub mod html;
mod memory;
pub mod preflight;
pub mod report;
pub mod rules;
mod runner;
mod suite;
pub mod vector;
pub mod websocket;
mod wire;

pub use memory::Figures;
pub use preflight::ContractCheck;
pub use report::{CaseResult, RunReport};
pub use runner::{Miss, Verdict};
pub use suite::{Case, Error, Profile, RunOptions, Suite, parse_url};
pub use vector::{Endpoint, Level, Vector, WsMessage};
pub use wire::WireEntry;
