//go:build !unix

package s3_test

import (
	"os"
	"os/exec"
)

func detach(*exec.Cmd)        {}
func terminate(cmd *exec.Cmd) { _ = cmd.Process.Signal(os.Interrupt) }
func kill(cmd *exec.Cmd)      { _ = cmd.Process.Kill() }
