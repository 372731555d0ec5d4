package provision

import (
	"context"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/labctl/labctl/doctor"
)

// streamTransport plays a recorded agent stream, in chunks of chunk bytes
// (a finding line may arrive split across writes).
type streamTransport struct {
	out   string
	chunk int
	argv  []string
}

func (s *streamTransport) Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	s.argv = argv
	io.Copy(io.Discard, stdin)
	for b := []byte(s.out); len(b) > 0; {
		n := min(s.chunk, len(b))
		if _, err := stdout.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
func (s *streamTransport) Put(context.Context, string, string, os.FileMode) error { return nil }
func (s *streamTransport) String() string                                         { return "stream" }
func (s *streamTransport) Close() error                                           { return nil }

func TestCallDoctor(t *testing.T) {
	stream := strings.Join([]string{
		`sudo: a stray line from a wrapper`,
		`{"schema":2,"type":"finding","finding":{"layer":"dom0","check":"bridge","status":"fail","detail":"br0 does not exist","meaning":"m","fix":"labctl provision"}}`,
		`{"schema":2,"type":"finding","finding":{"layer":"guest","check":"lease","subject":"auth-1","status":"ok","detail":"leased"}}`,
		`{"schema":2,"type":"step","step":{"step":"x","status":"ok","items":[],"elapsed_ms":0}}`,
		`{"schema":2,"type":"finding"}`,
		`{"schema":2,"type":"result","result":{"schema":2,"command":"doctor","lab":"mirage","ok":false,"changed":false,"steps":[],"error":"1 checks failed: dom0/bridge",` +
			`"guests":[{"name":"auth-1","mac":"00:16:3e:00:00:01","ip":"192.168.77.3","url":"http://192.168.77.3:8088/","state":"running","healthy":true}]}}`,
		``,
	}, "\n")
	want := []doctor.Finding{
		{Layer: doctor.LayerDom0, Check: "bridge", Status: doctor.StatusFail, Detail: "br0 does not exist", Meaning: "m", Fix: "labctl provision"},
		{Layer: doctor.LayerGuest, Check: "lease", Subject: "auth-1", Status: doctor.StatusOK, Detail: "leased"},
	}
	for _, chunk := range []int{1, 7, 4096} {
		tr := &streamTransport{out: stream, chunk: chunk}
		r, fs, err := CallDoctor(context.Background(), tr, "/var/lib/labctl/bin/labctl", AgentRequest{Spec: Default()})
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if !reflect.DeepEqual(tr.argv, []string{"/var/lib/labctl/bin/labctl", "agent", "doctor"}) {
			t.Fatalf("argv %q", tr.argv)
		}
		if !reflect.DeepEqual(fs, want) {
			t.Fatalf("chunk %d: findings\n%+v\nwant\n%+v", chunk, fs, want)
		}
		if r.Command != "doctor" || r.OK || len(r.Guests) != 1 || r.Guests[0].IP != "192.168.77.3" || !r.Guests[0].Healthy {
			t.Fatalf("chunk %d: result %+v", chunk, r)
		}
	}
	// No result: an error, and whatever findings came are still returned.
	tr := &streamTransport{out: strings.SplitAfterN(stream, "\n", 3)[0] + strings.SplitAfterN(stream, "\n", 3)[1], chunk: 3}
	_, fs, err := CallDoctor(context.Background(), tr, "labctl", AgentRequest{Spec: Default()})
	if err == nil || len(fs) != 1 {
		t.Fatalf("truncated stream: err %v, findings %+v", err, fs)
	}
}
