//go:build !unix

package torchdist

import "os/exec"

// ownProcessGroup: without process groups, cancelling kills the launcher only.
func ownProcessGroup(cmd *exec.Cmd) {}
