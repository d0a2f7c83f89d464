//! The C ABI. This layer converts and checks: every export catches panics,
//! null-checks its pointers, validates handles and maps errors to one status
//! enum. It holds no seek logic.

// C names for C types; raw pointers from C are checked at the boundary.
#![allow(non_camel_case_types, clippy::not_unsafe_ptr_arg_deref)]

mod boundary;
mod exchange;
mod media;
mod plan;
mod request;
mod stream;

pub use boundary::{ps_last_error, ps_status, ps_status_http, ps_strerror, ps_version};
pub use exchange::*;
pub use media::*;
pub use plan::*;
pub use request::*;
pub use stream::*;
