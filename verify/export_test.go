package verify

// SetParallelMin lets tests force the worker pool on small traces.
func SetParallelMin(n int64) (restore func()) {
	old := parallelMin
	parallelMin = n
	return func() { parallelMin = old }
}
