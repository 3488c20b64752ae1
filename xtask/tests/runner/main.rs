//! Tests of the runner's behaviour, run through the real `xtask` binary
//! against miniature workbooks in temporary directories (see `fixture`).
//!
//! One test binary, several modules: the fixture is compiled once.

mod arguments;
mod backups;
mod check;
mod fixture;
mod mutants;
mod verify;
