package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/provision"
)

// `deploy --replicas N` is remembered in the lab's desired state, so that
// status, check and a later deploy without the flag mean the same lab
// (issue 13): <state>/<lab>/desired.json. It records the spec file's own
// guests.replicas too: once the spec file says something else, the file
// wins again (an edited spec is the newer intent) and the record is
// ignored, then replaced or removed by the next deploy.
type desiredState struct {
	Replicas     int `json:"replicas"`
	SpecReplicas int `json:"spec_replicas"`
}

func desiredPath(stateRoot, lab string) string {
	return filepath.Join(provision.StateDir(stateRoot, lab), "desired.json")
}

// applyDesired puts a remembered --replicas into s, if it still applies.
// Read-only: a stale or unreadable record is only reported.
func (a *app) applyDesired(s *provision.Spec) {
	path := desiredPath(a.stateRoot, s.Lab)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var d desiredState
	if err == nil {
		err = json.Unmarshal(b, &d)
	}
	if err != nil {
		a.log.Warn("ignoring the lab's remembered --replicas", "file", path, "err", err)
		return
	}
	if d.SpecReplicas != s.Guests.Replicas || d.Replicas == s.Guests.Replicas {
		return // the spec file changed since: it decides
	}
	was := s.Guests.Replicas
	s.Guests.Replicas = d.Replicas
	if err := s.Validate(); err != nil {
		s.Guests.Replicas = was
		a.log.Warn("ignoring the lab's remembered --replicas", "file", path, "replicas", d.Replicas, "err", err)
	}
}

// rememberReplicas records deploy --replicas n for the lab, or forgets
// it when n is what the spec file says anyway.
func (a *app) rememberReplicas(lab string, n int) error {
	path := desiredPath(a.stateRoot, lab)
	if n == a.fileReplicas {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("forgetting --replicas in %s: %w", path, err)
		}
		return nil
	}
	if _, err := provision.EnsureStateDir(a.stateRoot, lab); err != nil {
		return err
	}
	b, _ := json.Marshal(desiredState{Replicas: n, SpecReplicas: a.fileReplicas})
	if err := procs.WriteFileAtomic(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("remembering --replicas in %s: %w", path, err)
	}
	return nil
}
