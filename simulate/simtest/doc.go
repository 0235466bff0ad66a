// Package simtest is the simulator's test harness: the acceptance sweep of valid plans and a
// check that runs a plan through the oracle, the simulator and the verifier and reports a
// failure with the one command that reproduces it. Other packages' tests (fuzz, bug catalogue)
// use it too.
package simtest
