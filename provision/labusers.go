package provision

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/labctl/labctl/service/users"
	"github.com/labctl/labctl/statedir"
)

// The lab's users live on the machine that runs labctl, in the lab's
// state directory; deploy sends their image to dom0.

// UsersDir is the lab's users store. With create the lab's state
// directory is made first (users add); without, nothing is created
// (users list, remove: a lab never seen stays unseen).
func UsersDir(stateRoot string, spec Spec, create bool) (users.Dir, error) {
	dir := StateDir(stateRoot, spec.Lab)
	if create {
		var err error
		if dir, err = EnsureStateDir(stateRoot, spec.Lab); err != nil {
			return users.Dir{}, err
		}
	}
	return users.Dir{Path: filepath.Join(dir, "users"), Iterations: spec.Users.Iterations}, nil
}

// UsersImagePath is where the lab's users image is built.
func UsersImagePath(stateRoot, lab string) string {
	return statedir.Layout{Root: stateRoot, Lab: lab}.UsersImage()
}

// SeedDemo gives a lab without users the article's demo user, saying
// so; seeded reports that it did (his password is then known without a
// PBKDF2 to verify it).
func SeedDemo(stateRoot string, spec Spec, log *slog.Logger) (seeded bool, err error) {
	d, err := UsersDir(stateRoot, spec, true)
	if err != nil {
		return false, err
	}
	seeded, err = users.SeedDemo(d)
	if err != nil {
		return false, fmt.Errorf("users: %w", err)
	}
	if seeded {
		log.Warn("the lab had no users: added the article's demo user john/password (demo only; labctl users add/remove to change)")
	}
	return seeded, nil
}

// BuildUsersImage turns the lab's users directory into the users image
// under the state directory (seeding the demo user into an empty lab)
// and returns its path and digest. With plan (deploy --plan) it writes
// nothing and only reports where the image would go.
func BuildUsersImage(stateRoot string, spec Spec, plan bool, log *slog.Logger) (path, sum string, err error) {
	path = UsersImagePath(stateRoot, spec.Lab)
	if plan {
		sum, _ := users.FileSHA256(path)
		return path, sum, nil
	}
	if _, err := SeedDemo(stateRoot, spec, log); err != nil {
		return "", "", err
	}
	d, err := UsersDir(stateRoot, spec, true)
	if err != nil {
		return "", "", err
	}
	img, err := d.Image()
	if err != nil {
		return "", "", fmt.Errorf("users image: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", "", err
	}
	if _, err := users.WriteImage(path, img); err != nil {
		return "", "", err
	}
	return path, users.ImageSHA256(img), nil
}
