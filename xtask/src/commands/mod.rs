//! One module per `cargo xtask` command; `main.rs` dispatches to their `run`,
//! passing each its own arguments struct whole.

pub mod book;
pub mod check;
pub mod doctor;
pub mod hint;
pub mod lab;
pub mod overview;
pub mod reset;
pub mod solution;
pub mod status;
pub mod verify;
pub mod watch;
