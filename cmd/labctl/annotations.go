package main

// Command annotations read by docs/cli.md's generator (cli_doc_test.go).
const (
	// annTargets: the --target values a verb accepts when not all of
	// them ("sim": up and down build and remove the simulated lab).
	annTargets = "labctl/targets"
	// annExit: exit codes a verb has beyond 0, 1, 2, 130 and 143.
	annExit = "labctl/exit"
)
