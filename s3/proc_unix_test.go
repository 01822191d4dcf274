//go:build unix

package s3_test

import (
	"os/exec"
	"syscall"
)

// detach starts cmd in its own process group (so that a terminal's signals
// do not reach it) and, on Linux, has it killed if the test binary dies
// before stopping it (a test timeout skips TestMain's cleanup).
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
}

// terminate asks cmd's process group to stop; kill makes it.
func terminate(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
func kill(cmd *exec.Cmd)      { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
