// Package nntest holds the finite-difference gradient checker that nn's and the oracle's tests
// (and any later executor's tests) use to trust a backward.
package nntest
