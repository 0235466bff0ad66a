//go:build unix

package torchdist

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup makes cancelling cmd kill the ranks it spawned too: torch.multiprocessing's
// children would otherwise outlive a killed launcher, hang in a collective and hold its output
// pipe open.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
