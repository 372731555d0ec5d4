package main

import "testing"

// The runtime starts either this binary or `labctl guest run` with the
// same arguments: both spellings of --config, the marker ignored.
func TestConfigArg(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"guest", "run", "--config", "/s/boot.json", "--state=/s"}, "/s/boot.json"},
		{[]string{"--config=/s/boot.json"}, "/s/boot.json"},
		{[]string{"--state=/s"}, ""},
		{[]string{"--config"}, ""},
	} {
		if got := configArg(tc.args); got != tc.want {
			t.Errorf("configArg(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}
