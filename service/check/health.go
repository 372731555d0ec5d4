package check

import (
	"context"
	"fmt"
	"time"
)

// The health contract, the one place it is written: a request without
// credentials is answered 401 "No user given" (service/README.md). It
// proves the auth service runs — not merely that something listens —
// without costing the guest a PBKDF2 run. Deploy, doctor and trace ask
// it from dom0 and from the host.
const (
	HealthPath   = "/health"
	HealthStatus = 401
	HealthBody   = bodyNoUser
	// HealthOK is how a report says the answer was right.
	HealthOK = `401 "No user given"`
)

// HealthAnswer is nil when status and body are the contract's answer to
// the health request, else an error saying what came instead.
func HealthAnswer(status int, body string) error {
	if status != HealthStatus || body != HealthBody {
		return fmt.Errorf("answered %d %q, want %d %q", status, body, HealthStatus, HealthBody)
	}
	return nil
}

// Health asks the guest at hostport the health request through dial.
func Health(ctx context.Context, dial DialFunc, hostport string, timeout time.Duration) error {
	status, _, body, err := Do(ctx, dial, hostport, "GET", HealthPath, timeout)
	if err != nil {
		return err
	}
	return HealthAnswer(status, body)
}
