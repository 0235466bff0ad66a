//go:build !unix

package testenv

import "time"

func ProcessCPU() time.Duration { return 0 }
