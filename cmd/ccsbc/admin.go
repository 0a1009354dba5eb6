package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ccsbc/ccsbc/admin"
)

// cmdCalls prints the calls in progress from the admin API.
func cmdCalls(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("calls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("admin", "127.0.0.1:9060", "admin API address (http://host:port or https://...)")
	token := fs.String("token", os.Getenv("CCSBC_TOKEN"), "bearer token with role read (default $CCSBC_TOKEN)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	calls, err := (&admin.Client{Addr: *addr, Token: *token}).Calls(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "ccsbc calls: %v\n", err)
		return 1
	}
	if err := admin.WriteCallsTable(stdout, calls); err != nil {
		fmt.Fprintf(stderr, "ccsbc calls: %v\n", err)
		return 1
	}
	return 0
}

// cmdAdmin holds admin helpers: hash-token.
func cmdAdmin(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "hash-token" {
		fmt.Fprint(stderr, "usage: ccsbc admin hash-token [TOKEN|-]\n")
		return 2
	}
	token := ""
	switch {
	case len(args) > 1 && args[1] == "-":
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		token = strings.TrimRight(line, "\r\n")
	case len(args) > 1:
		token = args[1]
	default:
		t, err := admin.NewToken()
		if err != nil {
			fmt.Fprintf(stderr, "ccsbc admin: %v\n", err)
			return 1
		}
		token = t
		fmt.Fprintf(stdout, "token:  %s   (give this to the client; it is not stored)\n", token)
	}
	fmt.Fprintf(stdout, "sha256: %s   (put this in admin.tokens)\n", admin.HashToken(token))
	return 0
}

// cmdHealth asks the admin API's /healthz: exit 0 when the daemon answers.
// It is the container HEALTHCHECK (the image has no shell or curl).
func cmdHealth(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("admin", "127.0.0.1:9060", "admin API address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	url := *addr
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	c := &http.Client{Timeout: 3 * time.Second}
	res, err := c.Get(url + "/healthz")
	if err != nil {
		fmt.Fprintf(stderr, "ccsbc health: %v\n", err)
		return 1
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "ccsbc health: %s\n", res.Status)
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}
