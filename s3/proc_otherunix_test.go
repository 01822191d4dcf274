//go:build unix && !linux

package s3_test

import "syscall"

func setDeathSignal(*syscall.SysProcAttr) {}
