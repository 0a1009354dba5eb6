package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/check")

// TestCheckGolden runs `ccsbc check` on every example in configs/ and
// compares its output with testdata/check/<name>.golden (regenerate with
// go test ./cmd/ccsbc -run TestCheckGolden -update). Every example must pass.
func TestCheckGolden(t *testing.T) {
	// The capacity line names the open-file limit: make it the same on
	// every machine.
	setFileLimit(t, 4096)
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil || len(files) < 5 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{"check", "--config", f}, &out, &errb)
			if code != exitClean {
				t.Fatalf("check exit %d:\n%s%s", code, out.String(), errb.String())
			}
			golden := filepath.Join("testdata", "check", name+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("check output differs from %s (run with -update after checking the change):\n%s", golden, out.String())
			}
		})
	}
}

// setFileLimit sets this process's open-file limit (soft) for the test.
func setFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if old.Max < n {
		t.Skipf("hard open-file limit %d is below %d", old.Max, n)
	}
	lim := old
	lim.Cur = n
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Setrlimit(unix.RLIMIT_NOFILE, &old) })
}

// TestCheckCapacity: check says how many calls the media range holds, and
// warns, naming the key, when the open-file limit allows fewer.
func TestCheckCapacity(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "big.yaml")
	b, err := os.ReadFile("../../configs/model1-unsecured.yaml")
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Replace(string(b), "ports: 40000-40999", "ports: 20000-29999", 1)
	if big == string(b) {
		t.Fatal("model1-unsecured.yaml has no ports: 40000-40999 line to change")
	}
	if err := os.WriteFile(cfg, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	setFileLimit(t, 1280)
	var out, errb bytes.Buffer
	code := run([]string{"check", "--strict", "--config", cfg}, &out, &errb)
	if code != exitWarnings {
		t.Errorf("exit %d, want %d (a warning):\n%s%s", code, exitWarnings, out.String(), errb.String())
	}
	for _, want := range []string{
		"media capacity: 256 calls at once (the port range holds 2500; open-file limit 1280 allows 256)",
		"media.ports 20000-29999 hold 2500 calls, but the open-file limit here (1280) allows 256: give the daemon at least 10256",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCheckWhisperConflict(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"check", "--config", "testdata/whisper-conflict.yaml"}, &out, &errb)
	if code != exitErrors {
		t.Fatalf("exit %d, want %d:\n%s", code, exitErrors, out.String())
	}
	for _, want := range []string{"whisper conflict", "vvb plays PCMU", "agents use G729", "fix: play the announcement from a VVB in G729", "configuration NOT OK"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCheckExitCodesAndJSON(t *testing.T) {
	// Model 2 lab example: clean except lab-only trust warnings.
	f := "../../configs/model2-secured-signaling.yaml"
	var out, errb bytes.Buffer
	if code := run([]string{"check", "--config", f, "--strict"}, &out, &errb); code != exitWarnings {
		t.Errorf("--strict with warnings: exit %d, want %d", code, exitWarnings)
	}
	out.Reset()
	if code := run([]string{"check", "--config", f, "--format", "json"}, &out, &errb); code != exitClean {
		t.Errorf("json: exit %d", code)
	}
	var rep checkReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, out.String())
	}
	if len(rep.Routes) != 3 || rep.Routes[0].Legs[1].Protection != "rtp" || len(rep.Warnings) == 0 {
		t.Errorf("json report: %+v", rep)
	}
	// A broken file: errors with file, line and key, exit 2.
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("model: 2\nlisteners:\n  - {transport: udp, address: 127.0.0.1:5060}\nbogus: 1\n"), 0o600)
	out.Reset()
	if code := run([]string{"check", "--config", bad}, &out, &errb); code != exitErrors {
		t.Errorf("bad config: exit %d", code)
	}
	for _, want := range []string{"bad.yaml:3", "listeners[0].transport", "bad.yaml:4", "bogus"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("bad config output lacks %q:\n%s", want, out.String())
		}
	}
}
