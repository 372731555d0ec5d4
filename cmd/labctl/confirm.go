package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/labctl/labctl/provision"
)

// provisionConfirmed runs a remote provision under commit-confirm
// (provision/confirm.go): the agent arms a watchdog before changing
// anything; afterwards this labctl reaches dom0 over a NEW connection and
// confirms. Without that confirmation by the deadline, dom0 undoes the
// run by itself: a change that cut dom0 off heals without a console.
func (a remoteOps) provisionConfirmed(ctx context.Context, c *dom0Conn, spec provision.Spec, req provision.AgentRequest, progress func(provision.StepResult)) (provision.Outcome, error) {
	timeout := a.remote.confirmTimeout
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	req.Confirm = &provision.ConfirmRequest{Token: token, TimeoutMS: timeout.Milliseconds()}
	deadline := time.Now().Add(timeout)

	// Confirm as soon as the steps that can cut dom0 off (uplink into the
	// bridge, address onto it) have reported over the old connection, or
	// once the run ends (or its connection is found dead: keepalives are
	// frequent under commit-confirm, see sshConfig).
	var once sync.Once
	confirmed := make(chan error, 1)
	startConfirm := func() {
		once.Do(func() { go func() { confirmed <- a.confirmOverNewConnection(ctx, spec, token, deadline) }() })
	}
	res, callErr := provision.CallAgent(ctx, c.t, c.exe, "provision", req, func(s provision.StepResult) {
		if s.Step == "address" && s.Status != provision.StatusProgress {
			startConfirm()
		}
		progress(s)
	})
	startConfirm()
	cerr := <-confirmed

	switch {
	case cerr != nil && callErr != nil:
		return res, &exitError{exitFail, fmt.Errorf("the connection to dom0 was lost during provision (%v), and no new connection reached it before %s: %v. "+
			"dom0 rolls this provision back by itself (commit-confirm); its journal records why. Fix what cut dom0 off (a firewall that accepts SSH on %s only, say), then provision again",
			callErr, deadline.Format(time.TimeOnly), cerr, spec.Network.Uplink)}
	case cerr != nil:
		h := res.Head()
		h.OK = false
		h.Error = errors.Join(errorOrNil(h.Error), fmt.Errorf("commit-confirm: %w; dom0 rolls this provision back by itself", cerr)).Error()
		return res, nil
	case callErr != nil:
		return res, &exitError{exitFail, fmt.Errorf("the connection to dom0 was lost during provision (%v); dom0 is reachable over a new connection and kept the changes: provision again to converge", callErr)}
	}
	a.log.Info("commit-confirm: dom0 reachable over a new connection; changes kept")
	return res, nil
}

func errorOrNil(s string) error {
	if s == "" {
		return nil
	}
	return errors.New(s)
}

// confirmOverNewConnection dials dom0 afresh and confirms token, retrying
// until the deadline.
func (a remoteOps) confirmOverNewConnection(ctx context.Context, spec provision.Spec, token string, deadline time.Time) error {
	ts, err := parseTarget(a.target)
	if err != nil {
		return err
	}
	var last error
	for time.Now().Before(deadline) {
		cctx, cancel := context.WithDeadline(ctx, deadline)
		last = func() error {
			c, err := a.openRemote(cctx, spec, ts)
			if err != nil {
				return err
			}
			defer c.Close()
			o, err := provision.CallAgent(cctx, c.t, c.exe, "confirm",
				provision.AgentRequest{Spec: spec, StateRoot: c.stateRoot, Confirm: &provision.ConfirmRequest{Token: token}}, nil)
			if err != nil {
				return err
			}
			r := o.Head()
			if !r.OK {
				return errors.New(r.Error)
			}
			return nil
		}()
		cancel()
		if last == nil {
			return nil
		}
		a.log.Warn("commit-confirm: dom0 not reached over a new connection yet", "err", last)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if last == nil {
		last = errors.New("deadline passed")
	}
	return last
}
