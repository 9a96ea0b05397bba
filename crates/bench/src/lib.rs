//! `chat-bench`: drives a running chat service with real WebSocket and HTTP
//! clients and reports rates, latencies, errors and the server's memory; its
//! `baseline` server is the no-persistence floor every figure is compared with.

pub mod baseline;
pub mod cli;
pub mod connect;
pub mod frames;
pub mod latency;
pub mod limits;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod server_memory;
pub mod target;
