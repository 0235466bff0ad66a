// Package testenv decides what a test does when an outside tool it needs (Debian's PyTorch,
// PyPI's safetensors, Chromium) is missing: skip on a developer's machine, fail in CI. CI sets
// SPCHECK_REQUIRE=1 (or a per-tool SPCHECK_REQUIRE_<TOOL>=1) so that a check that silently stops
// running can never pass.
package testenv
