// Command shoal-go sends one request to a Shoal cluster with the official NATS client for Go
// (github.com/nats-io/nats.go) and prints the reply.
//
// Shoal's API is plain NATS request-reply with JSON bodies (docs/protocol.md): nothing here is
// Shoal-specific beyond the subjects, the error envelope and what a timeout means.
//
//	shoal-go [-s nats://127.0.0.1:4222] [-f body.json | -f -] [-timeout 6s] <subject> [body]
//
// The body is the argument after the subject, or the file given with -f ("-" is stdin), or {}
// when neither is given. The reply body goes to stdout. Exit status:
//
//	0  a reply that is not an error
//	1  an error reply: {"error": {"code", "message"}} on stdout, "CODE (status N): message" on stderr
//	2  a usage error or a body that cannot be sent (unreadable, not JSON, over max_payload)
//	3  no responders: nothing on this NATS server subscribes to the subject
//	4  no reply before the deadline
//	5  no connection to NATS
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

const (
	exitErrorReply  = 1
	exitUsage       = 2
	exitNoResponder = 3
	exitTimeout     = 4
	exitNoNats      = 5

	// defaultTimeoutMs is the deadline a Shoal router applies when the body has no timeoutMs.
	defaultTimeoutMs = 5000
	// replyGrace is how much longer than the cluster's deadline to wait for its answer: the
	// cluster answers by timeoutMs, and the reply still has to travel (docs/protocol.md).
	replyGrace = time.Second
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shoal-go", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defaultURL := os.Getenv("NATS_URL")
	if defaultURL == "" {
		defaultURL = nats.DefaultURL
	}
	server := fs.String("s", defaultURL, "NATS server URL ($NATS_URL when set)")
	file := fs.String("f", "", "read the request body from this file (\"-\": stdin)")
	timeout := fs.Duration("timeout", 0, "how long to wait for the reply (default: the body's timeoutMs, else 5s, plus 1s)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: shoal-go [-s url] [-f file|-] [-timeout d] <subject> [body]")
		fmt.Fprintln(stderr, "  e.g. shoal-go shoal.v1.admin.collections.create '{\"name\": \"docs\", \"dim\": 3}'")
		fmt.Fprintln(stderr, "       shoal-go -f points.json shoal.v1.docs.upsert")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() < 1 || fs.NArg() > 2 || (fs.NArg() == 2 && *file != "") {
		fs.Usage()
		return exitUsage
	}
	subject := fs.Arg(0)

	body, err := readBody(fs.Arg(1), *file, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "shoal-go: %v\n", err)
		return exitUsage
	}
	wait := *timeout
	if wait == 0 {
		wait = replyWait(body)
	}

	nc, err := nats.Connect(*server, nats.Name("shoal-go"), nats.Timeout(5*time.Second))
	if err != nil {
		fmt.Fprintf(stderr, "shoal-go: cannot connect to NATS at %s: %v (is the server running? pass -s or set NATS_URL)\n", *server, err)
		return exitNoNats
	}
	defer nc.Close()

	if limit := nc.MaxPayload(); int64(len(body)) > limit {
		fmt.Fprintf(stderr, "shoal-go: the body is %d bytes and this NATS server takes at most %d (its max_payload): "+
			"split it into several requests (an upsert takes at most 10,000 points)\n", len(body), limit)
		return exitUsage
	}

	reply, err := nc.Request(subject, body, wait)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		fmt.Fprintf(stderr, "shoal-go: no responders on %q at %s: nothing there subscribes to that subject.\n"+
			"  Either the subject is wrong: Shoal's are <prefix>.v1.admin.<...> and <prefix>.v1.<collection>.<operation>,\n"+
			"  the prefix being \"shoal\" unless the cluster was started with --prefix (docs/protocol.md);\n"+
			"  or no Shoal cluster is connected to this NATS server.\n", subject, nc.ConnectedUrlRedacted())
		return exitNoResponder
	case errors.Is(err, nats.ErrTimeout):
		fmt.Fprintf(stderr, "shoal-go: timeout: no reply on %q within %v. Something subscribes to it (a Shoal router, or\n"+
			"  another service) but did not answer in time: a node paused or overloaded, or -timeout shorter than the\n"+
			"  request's timeoutMs. For a write the outcome is unknown: send it again with the same requestId, which\n"+
			"  applies it at most once (without a requestId, a resend may apply it twice).\n", subject, wait)
		return exitTimeout
	case err != nil:
		fmt.Fprintf(stderr, "shoal-go: request on %q failed: %v\n", subject, err)
		return exitNoNats
	}

	stdout.Write(reply.Data)
	fmt.Fprintln(stdout)
	if code, message, ok := errorOf(reply); ok {
		fmt.Fprintf(stderr, "%s (status %s): %s\n", code, reply.Header.Get("Nats-Service-Error-Code"), message)
		return exitErrorReply
	}
	return 0
}

// readBody returns the request body: the argument, else the file ("-" is stdin), else {}.
// It is checked to be JSON here, so that a typo fails before it reaches the cluster.
func readBody(arg, file string, stdin io.Reader) ([]byte, error) {
	var body []byte
	switch {
	case arg != "":
		body = []byte(arg)
	case file == "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading the body from stdin: %v", err)
		}
		body = b
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading the body: %v", err)
		}
		body = b
	default:
		return []byte("{}"), nil
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return []byte("{}"), nil
	}
	if !json.Valid(body) {
		var v interface{}
		err := json.Unmarshal(body, &v)
		return nil, fmt.Errorf("the body is not JSON: %v", err)
	}
	return body, nil
}

// replyWait is how long to wait for the reply: the body's timeoutMs (the cluster's deadline for
// the whole operation), else Shoal's default, plus a grace for the reply to travel.
func replyWait(body []byte) time.Duration {
	var req struct {
		TimeoutMs *float64 `json:"timeoutMs"`
	}
	ms := float64(defaultTimeoutMs)
	if json.Unmarshal(body, &req) == nil && req.TimeoutMs != nil && *req.TimeoutMs > 0 {
		ms = *req.TimeoutMs
	}
	return time.Duration(ms)*time.Millisecond + replyGrace
}

// errorOf reports whether reply is a Shoal error: {"error": {"code", "message"}}, sent with the
// headers Nats-Service-Error-Code (the status) and Nats-Service-Error (the message).
func errorOf(reply *nats.Msg) (code, message string, ok bool) {
	var env struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(reply.Data, &env) == nil && env.Error != nil {
		return env.Error.Code, env.Error.Message, true
	}
	if status := reply.Header.Get("Nats-Service-Error-Code"); status != "" {
		return "ERROR", reply.Header.Get("Nats-Service-Error"), true
	}
	return "", "", false
}
