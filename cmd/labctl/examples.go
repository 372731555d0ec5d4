package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// examples are each verb's --help examples, by command path below
// "labctl"; TestExamples keeps every verb covered.
var examples = map[string]string{
	"init":         "labctl init                       # ./lab.yaml with the defaults\nlabctl init -f ux.yaml --lab ux   # another lab's spec",
	"validate":     "labctl validate -f lab.yaml",
	"version":      "labctl version --json",
	"up":           "sudo labctl up --target sim\nsudo labctl up --target sim -f lab.yaml --full-check",
	"down":         "sudo labctl down --target sim",
	"sim up":       "sudo labctl sim up --lab ux\nsudo labctl sim up --sshd   # dom0 reachable over SSH, as the Vagrant VM",
	"sim down":     "sudo labctl sim down --lab ux",
	"provision":    "sudo labctl provision --plan --detailed-exitcode   # 2 when something would change\nsudo labctl provision --target vagrant",
	"status":       "sudo labctl status --target sim\nsudo labctl status --target sim -o wide",
	"teardown":     "sudo labctl teardown --target sim",
	"deploy":       "sudo labctl deploy --target sim --replicas 3\nlabctl deploy --runtime xen --plan",
	"destroy":      "sudo labctl destroy auth-2 --target sim",
	"logs":         "sudo labctl logs auth-1 --target sim\nsudo labctl logs -F auth-1",
	"check":        "sudo labctl check --target sim --junit check.xml",
	"doctor":       "sudo labctl doctor --target sim",
	"trace":        "sudo labctl trace auth-1 --target sim --from dom0",
	"shell":        "sudo labctl shell dom0 --target sim",
	"console":      "sudo labctl console auth-1 --target sim",
	"curl":         "sudo labctl curl auth-1 /foo/bar --target sim\necho \"$PW\" | sudo labctl curl auth-1 --user alice --password-stdin",
	"graph":        "sudo labctl graph --target sim -o svg > lab.svg",
	"bundle":       "sudo labctl bundle --target sim -o evidence.tar.gz",
	"users add":    "sudo labctl users add alice\necho \"$PW\" | sudo labctl users add alice --password-stdin",
	"users list":   "sudo labctl users list --json",
	"users remove": "sudo labctl users remove john",
}

// addExamples sets Example on every verb that has one.
func addExamples(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if ex, ok := examples[strings.TrimPrefix(c.CommandPath(), root.Name()+" ")]; ok {
			c.Example = "  " + strings.ReplaceAll(ex, "\n", "\n  ")
		}
	}
	walk(root)
}
