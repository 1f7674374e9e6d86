//! Inspection: the names a connection carries. DNS answers and questions,
//! TLS ClientHello SNI and HTTP Host (`names`), QUIC Initials
//! (`quic`), internationalised names (`idn`), and rewriting DNS answers of
//! blocked names (`sinkhole`). Sans-IO: bytes in, names out; every reader
//! of untrusted bytes here is fuzzed. See docs/ARCHITECTURE.md.

pub mod idn;
pub mod names;
pub mod quic;
pub mod sinkhole;
