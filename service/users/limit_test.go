package users

import (
	"bytes"
	"fmt"
	"testing"
)

// The host's limit is the guest's (issue 10 item 9): the largest image
// BuildImage accepts is one ReadImage reads, and one user more is refused
// by the host, before anything is deployed.
func TestMaxUsersImageFitsTheGuest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 32 MiB image")
	}
	// A long credential (full-length salt); every valid one fits one
	// tar block (see the assertion by MaxUsers).
	c, err := HashWithSalt("pw", bytes.Repeat([]byte{1}, 64), 1000)
	if err != nil {
		t.Fatal(err)
	}
	creds := make(map[string]Credential, MaxUsers+1)
	for i := range MaxUsers {
		creds[fmt.Sprintf("user%05d", i)] = c
	}
	img, err := BuildImage(creds)
	if err != nil {
		t.Fatalf("BuildImage(%d users): %v", MaxUsers, err)
	}
	got, err := ReadImage(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("the guest refuses the host's largest image (%d bytes): %v", len(img), err)
	}
	if len(got) != MaxUsers {
		t.Fatalf("read %d users, want %d", len(got), MaxUsers)
	}
	creds["zz-one-more"] = c
	if _, err := BuildImage(creds); err == nil {
		t.Fatalf("BuildImage(%d users) accepted more than MaxUsers", len(creds))
	}
}
