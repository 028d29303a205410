//! Process exit codes: the contract CI pipelines script against (see `docs/cli.md`).

/// Everything went as asked.
pub const OK: i32 = 0;
/// The action failed; the previous release still serves.
pub const ACTION_FAILED: i32 = 1;
/// Usage or configuration error: nothing was attempted.
pub const USAGE: i32 = 2;
/// The service is locked by someone else.
pub const LOCKED: i32 = 3;
/// A host could not be reached.
pub const UNREACHABLE: i32 = 4;
/// `status`/`alerts` found a problem (unhealthy live color, firing alert).
pub const UNHEALTHY: i32 = 5;
