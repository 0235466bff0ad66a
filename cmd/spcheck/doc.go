// Command spcheck is the command-line front end: a thin layer over the packages. Each
// subcommand lives in its own cmd_*.go file and registers itself in init.
//
// Exit codes everywhere: 0 verified (or success), 1 verification failed, 2 bad input or usage.
package main
