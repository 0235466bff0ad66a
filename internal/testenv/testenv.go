package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// SystemPython is Debian's interpreter, the one python3-torch installs into.
const SystemPython = "/usr/bin/python3"

// Need skips t when missing is non-empty, or fails it when the tool is required here.
// tool names the requirement (TORCH, PYTHON, CHROMIUM); missing says what is absent and how to
// install it.
func Need(t testing.TB, tool, missing string) {
	t.Helper()
	if missing == "" {
		return
	}
	if os.Getenv("SPCHECK_REQUIRE") == "1" || os.Getenv("SPCHECK_REQUIRE_"+tool) == "1" {
		t.Fatalf("required here (SPCHECK_REQUIRE_%s): %s", tool, missing)
	}
	t.Skipf("%s (set SPCHECK_REQUIRE_%s=1 to make this a failure)", missing, tool)
}

// PythonModules returns "" when python can import every module, else what is missing.
func PythonModules(python, hint string, modules ...string) string {
	code := ""
	for _, m := range modules {
		code += "import " + m + "\n"
	}
	if out, err := exec.Command(python, "-c", code).CombinedOutput(); err != nil {
		return python + " cannot import " + joinWords(modules) + " (" + hint + "): " + string(out)
	}
	return ""
}

// NeedTorch requires Debian's torch under SystemPython.
func NeedTorch(t testing.TB) {
	t.Helper()
	Need(t, "TORCH", PythonModules(SystemPython, "apt-get install -y python3-torch", "torch"))
}

// Program returns the path of a program on PATH, or skips/fails t naming the install hint.
func Program(t testing.TB, tool, name, hint string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Need(t, tool, name+" not installed ("+hint+")")
	}
	return path
}

func joinWords(ws []string) string {
	s := ""
	for i, w := range ws {
		if i > 0 {
			s += ", "
		}
		s += w
	}
	return s
}
