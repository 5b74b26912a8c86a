// Command peer-go is the Go net/http peer of `hijack conform`: the conformance endpoints of
// SPEC.md#conformance-endpoints on the standard library's server, hijacking with
// http.Hijacker. Built once per Go version (peers/build) so the suite can compare them.
//
//	peer-go [ADDR]   (default 127.0.0.1:0; a bare port means 127.0.0.1:PORT)
//
// It prints "listening on http://127.0.0.1:PORT" on stdout once it accepts connections.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// event is what /close-notify/{id} recorded, as /events/{id} reports it.
type event struct {
	ID          string `json:"id"`
	CloseNotify string `json:"close_notify"`
	AfterMs     *int64 `json:"after_ms"`
}

// held is every part a /hold hijack handed over: the memory case measures what they retain.
type held struct {
	conn net.Conn
	rw   *bufio.ReadWriter
}

var (
	eventsMu sync.Mutex
	events   = map[string]event{}

	heldMu sync.Mutex
	holds  []held

	// connections counts open connections, hijacked ones included: ConnState adds on New and
	// removes on Closed; a hijacked connection leaves the server's tracking (no Closed), so
	// whoever closes it removes it.
	connections atomic.Int64
)

func record(id, state string, afterMs *int64) {
	eventsMu.Lock()
	events[id] = event{ID: id, CloseNotify: state, AfterMs: afterMs}
	eventsMu.Unlock()
}

// hasToken reports whether any value of the header field holds token (comma-separated list,
// case-insensitive), as RFC 9110 lists are read.
func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func wantsUpgrade(r *http.Request, protocol string) bool {
	return hasToken(r.Header, "Connection", "upgrade") && hasToken(r.Header, "Upgrade", protocol)
}

func text(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// upgrade answers 101 with Upgrade: protocol and hijacks. The head is written through the
// ResponseWriter before the hijack, so Go flushes it (and discards an unread body) itself.
func upgrade(w http.ResponseWriter, protocol string) (net.Conn, *bufio.ReadWriter, bool) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		text(w, http.StatusInternalServerError, "no Hijacker\n")
		return nil, nil, false
	}
	w.Header().Set("Upgrade", protocol)
	w.Header().Set("Connection", "Upgrade")
	w.WriteHeader(http.StatusSwitchingProtocols)
	conn, rw, err := hj.Hijack()
	if err != nil {
		log.Printf("hijack: %v", err)
		return nil, nil, false
	}
	return conn, rw, true
}

// echo: the bytes the server already buffered come first, because every read goes through
// rw.Reader, the server's bufio.Reader, before it reaches the connection.
func echo(w http.ResponseWriter, r *http.Request) {
	if !wantsUpgrade(r, "echo") {
		text(w, http.StatusUpgradeRequired, "send Connection: Upgrade and Upgrade: echo\n")
		return
	}
	conn, rw, ok := upgrade(w, "echo")
	if !ok {
		return
	}
	defer connections.Add(-1)
	defer conn.Close()
	buf := make([]byte, 16<<10)
	for {
		n, err := rw.Reader.Read(buf)
		if n > 0 {
			if _, werr := conn.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // io.EOF: the client half-closed
			return
		}
	}
}

// closeNotify waits for the client to go away (CloseNotify, and the request context, which
// Go cancels at the same moment) or for timeout_ms.
func closeNotify(w http.ResponseWriter, r *http.Request, id string) {
	timeout := int64(5000)
	if v := r.URL.Query().Get("timeout_ms"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			timeout = n
		}
	}
	record(id, "pending", nil)
	started := time.Now()
	//lint:ignore SA1019 CloseNotify is the close-notify this peer exists to observe.
	gone := w.(http.CloseNotifier).CloseNotify()
	timer := time.NewTimer(time.Duration(timeout) * time.Millisecond)
	defer timer.Stop()
	select {
	case <-gone:
		ms := time.Since(started).Milliseconds()
		record(id, "fired", &ms)
	case <-r.Context().Done():
		ms := time.Since(started).Milliseconds()
		record(id, "fired", &ms)
	case <-timer.C:
		ms := time.Since(started).Milliseconds()
		record(id, "timeout", &ms)
		text(w, http.StatusOK, "still here\n")
	}
}

func eventsHandler(w http.ResponseWriter, id string) {
	eventsMu.Lock()
	ev, ok := events[id]
	eventsMu.Unlock()
	if !ok {
		text(w, http.StatusNotFound, "no such close-notify request\n")
		return
	}
	body, _ := json.Marshal(ev)
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(body, '\n'))
}

// hold hijacks and keeps the net.Conn and the *bufio.ReadWriter, then returns: what stays
// live per held connection is what the memory case measures (Go 1.24 keeps the server's
// connection state reachable from rw; Go 1.25 and later release it).
func hold(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || !wantsUpgrade(r, "hold") {
		text(w, http.StatusUpgradeRequired, "send GET with Connection: Upgrade and Upgrade: hold\n")
		return
	}
	conn, rw, ok := upgrade(w, "hold")
	if !ok {
		return
	}
	heldMu.Lock()
	holds = append(holds, held{conn, rw})
	heldMu.Unlock()
}

func release(w http.ResponseWriter) {
	heldMu.Lock()
	taken := holds
	holds = nil
	heldMu.Unlock()
	for _, h := range taken {
		h.conn.Close()
		connections.Add(-1)
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"released\": %d}\n", len(taken))
}

func stats(w http.ResponseWriter) {
	// Twice: the first collection can leave objects that only a second one frees (finalizers).
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"live_heap_bytes\": %d, \"connections\": %d}\n", m.HeapAlloc, connections.Load())
}

// serve dispatches on the path itself: ServeMux would clean and redirect paths.
func serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == "/echo":
		echo(w, r)
	case path == "/close-notify" || strings.HasPrefix(path, "/close-notify/"):
		closeNotify(w, r, strings.TrimPrefix(strings.TrimPrefix(path, "/close-notify"), "/"))
	case strings.HasPrefix(path, "/events/"):
		eventsHandler(w, strings.TrimPrefix(path, "/events/"))
	case path == "/hold":
		hold(w, r)
	case path == "/release":
		release(w)
	case path == "/stats":
		stats(w)
	default:
		// Go leaves a body it cannot read (bad chunked framing) to the handler: answer 400
		// and close, as an application that checks the error does.
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			w.Header().Set("Connection", "close")
			text(w, http.StatusBadRequest, "cannot read the request body\n")
			return
		}
		// The body names the request it answers (SPEC.md#conformance-endpoints).
		text(w, http.StatusOK, r.Method+" "+r.RequestURI+": hijack conformance peer ("+runtime.Version()+" net/http)\n")
	}
}

func main() {
	addr := "127.0.0.1:0"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	if !strings.Contains(addr, ":") {
		addr = "127.0.0.1:" + addr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(serve),
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				connections.Add(1)
			case http.StateClosed:
				connections.Add(-1)
			}
		},
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	log.Fatal(srv.Serve(ln))
}
