package attach

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/labctl/labctl/service/check"
	"github.com/labctl/labctl/service/users"
)

// Demo is the article's user: the only credentials labctl can know,
// since the lab stores users as PBKDF2 hashes.
const (
	DemoUser     = "john"
	DemoPassword = "password"
)

// DemoUsable says whether the lab's stored users let curl send the
// article's john/password honestly: john exists and his stored hash
// matches "password" (a user who changed it is not impersonated).
func DemoUsable(creds map[string]users.Credential) bool {
	c, ok := creds[DemoUser]
	return ok && c.Verify(DemoPassword)
}

// Target is the request's target: the article's
// "/?user=U&password=P" on path, both values escaped.
func Target(path, user, password string) (string, error) {
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "?# \t\r\n") {
		return "", fmt.Errorf("PATH %q: expected an absolute path like /login, without a query", path)
	}
	// The article's order, user first (url.Values.Encode would sort).
	return path + "?user=" + url.QueryEscape(user) + "&password=" + url.QueryEscape(password), nil
}

// Curl sends GET target to hostport through dial and returns the answer.
func Curl(ctx context.Context, dial check.DialFunc, hostport, target string, timeout time.Duration) (int, string, error) {
	status, _, body, err := check.Do(ctx, dial, hostport, "GET", target, timeout)
	return status, body, err
}
