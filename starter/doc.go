// Package starter is scimsync's operator CLI: configuration as code (apply), the directory
// import for trying scimsync out, one object synced now with a step-by-step log (sync),
// full syncs triggered through their schedule (full-sync), status, mapping tests and
// listings.
//
// The command line is cobra's (Main builds the command tree from the commands table on
// every call); each command's file declares it in a function of the shape
//
//	func fooCommand(cl *cmdLine) runFunc
//
// that describes its synopsis, help and positional arguments and declares its flags on cl,
// and returns what runs it: the command's function, given the parsed flags, returning the
// exit code (ExitOK, ExitFailure, ExitUsage), so tests run the commands in process exactly
// as cmd/starter does. Deps carries what a command may need; what it does not carry (the
// store, the Temporal client) is opened from the global flags and environment
// (DATABASE_URL, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, SCIMSYNC_TASK_QUEUE, ...) the way
// the worker does.
//
// What this package must not do: it holds no SQL (the store does), starts no workflow under
// a name or ID of its own (the workflows package's contract names them), and never prints a
// secret: tokens and client secrets are shown as the references they are stored as, and
// literal secrets are never echoed.
package starter
