//! The syscall compatibility suite.
//!
//! Small C programs (`programs/*.c`), each about one syscall family, print one line per
//! case (`ok <case>`, `FAIL <case>: <detail>`, `skip <case>: <reason>`). The runner
//! (`tests/suite.rs`) runs each natively, under `bulwark do` on every platform the host
//! has, and under gVisor's `runsc` where installed; this library holds the parts that do
//! not depend on the host: parsing a run, the expected-failures file, comparing a run
//! against native, and rendering the table and `docs/compatibility.md`.

pub mod compare;
pub mod exec;
pub mod expected;
pub mod output;
pub mod program;
pub mod render;
