// Command hijack-bench-go is the Go side of benches/run: the same measures as our benches, on the
// standard library's net/http server, built once per Go version. Standard library only.
//
//	hijack-bench-go serve ADDR          serve /echo, /cn/{id}?port=P and / (keep-alive GET)
//	hijack-bench-go retained N          bytes retained per hijacked, held connection
//	hijack-bench-go clients ADDR N      (internal) hold N /hold connections for `retained`
//
// `serve` prints "listening on http://ADDR" once it accepts connections.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// text is the body our demo server answers on /, so both servers send the same bytes.
const text = "hijack reference server: try /echo (Upgrade: echo) or /close-notify/{id}\n"

func wantsUpgrade(r *http.Request, protocol string) bool {
	has := func(name, token string) bool {
		for _, v := range r.Header.Values(name) {
			for _, t := range strings.Split(v, ",") {
				if strings.EqualFold(strings.TrimSpace(t), token) {
					return true
				}
			}
		}
		return false
	}
	return has("Connection", "upgrade") && has("Upgrade", protocol)
}

func upgrade(w http.ResponseWriter, protocol string) (net.Conn, *bufio.ReadWriter, bool) {
	w.Header().Set("Upgrade", protocol)
	w.Header().Set("Connection", "Upgrade")
	w.WriteHeader(http.StatusSwitchingProtocols)
	conn, rw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		log.Printf("hijack: %v", err)
		return nil, nil, false
	}
	return conn, rw, true
}

// echo: upgrade, then echo every byte (the server's buffered bytes first, through rw) until
// the client half-closes: what our demo's /echo does.
func echo(w http.ResponseWriter, r *http.Request) {
	if !wantsUpgrade(r, "echo") {
		w.WriteHeader(http.StatusUpgradeRequired)
		return
	}
	conn, rw, ok := upgrade(w, "echo")
	if !ok {
		return
	}
	defer conn.Close()
	buf := make([]byte, 16<<10)
	for {
		n, err := rw.Reader.Read(buf)
		if n > 0 {
			if _, werr := conn.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

var (
	udpOnce sync.Once
	udp     *net.UDPConn
)

// closeNotify (/cn/{id}?port=P): flush a response head so the client knows the handler runs,
// wait for close-notify, then send "{id}" in one UDP datagram to 127.0.0.1:P. The client
// times from its close to that datagram: the same path for both servers.
func closeNotify(w http.ResponseWriter, r *http.Request, id string) {
	port, err := strconv.Atoi(r.URL.Query().Get("port"))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	udpOnce.Do(func() {
		udp, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			log.Fatal(err)
		}
	})
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	//lint:ignore SA1019 CloseNotify is what this measures.
	gone := w.(http.CloseNotifier).CloseNotify()
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		return
	}
	udp.WriteToUDP([]byte(id), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
}

func serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == "/echo":
		echo(w, r)
	case strings.HasPrefix(path, "/cn/"):
		closeNotify(w, r, strings.TrimPrefix(path, "/cn/"))
	case path == "/hold":
		hold(w, r)
	default:
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, text)
	}
}

type held struct {
	conn net.Conn
	rw   *bufio.ReadWriter
}

var (
	heldMu sync.Mutex
	holds  []held
)

// hold (/hold): hijack, keep every part handed over, return.
func hold(w http.ResponseWriter, r *http.Request) {
	conn, rw, ok := upgrade(w, "hold")
	if !ok {
		return
	}
	heldMu.Lock()
	holds = append(holds, held{conn, rw})
	heldMu.Unlock()
}

func heldCount() int {
	heldMu.Lock()
	defer heldMu.Unlock()
	return len(holds)
}

func listen(addr string) net.Listener {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	go func() { log.Fatal(http.Serve(ln, http.HandlerFunc(serve))) }()
	return ln
}

const holdRequest = "GET /hold HTTP/1.1\r\nHost: bench\r\nConnection: Upgrade\r\nUpgrade: hold\r\n\r\n"

// dial opens n connections that each hijack /hold and have read the 101 head.
func dial(addr string, n int) []net.Conn {
	conns := make([]net.Conn, 0, n)
	buf := make([]byte, 4096)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := io.WriteString(c, holdRequest); err != nil {
			log.Fatal(err)
		}
		var got []byte
		for !bytes.Contains(got, []byte("\r\n\r\n")) {
			k, err := c.Read(buf)
			if err != nil {
				log.Fatal(err)
			}
			got = append(got, buf[:k]...)
		}
		conns = append(conns, c)
	}
	return conns
}

func liveHeap() uint64 {
	// Twice: the first collection can leave objects only a second one frees (finalizers).
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func waitHeld(n int) {
	deadline := time.Now().Add(30 * time.Second)
	for heldCount() < n {
		if time.Now().After(deadline) {
			log.Fatalf("only %d of %d connections held", heldCount(), n)
		}
		time.Sleep(time.Millisecond)
	}
	// The handlers appended, then return; give them and the serving goroutines time to end.
	time.Sleep(50 * time.Millisecond)
}

func release() {
	heldMu.Lock()
	for _, h := range holds {
		h.conn.Close()
	}
	holds = nil
	heldMu.Unlock()
}

// retained: live heap per hijacked, held connection after the handlers returned, 2 rounds
// (the first warms up the server's maps and pools). Clients in this process (as Go's
// reference figure) and, for the server-side-only figure, in a child process.
func retained(n int) {
	ln := listen("127.0.0.1:0")
	addr := ln.Addr().String()
	// Warm-up round.
	conns := dial(addr, n)
	waitHeld(n)
	release()
	for _, c := range conns {
		c.Close()
	}
	conns = nil

	before := liveHeap()
	conns = dial(addr, n)
	waitHeld(n)
	after := liveHeap()
	fmt.Printf("inproc %d %d\n", n, int64(after-before)/int64(n))
	runtime.KeepAlive(conns)
	release()
	for _, c := range conns {
		c.Close()
	}
	conns = nil

	before = liveHeap()
	child := exec.Command(os.Args[0], "clients", addr, strconv.Itoa(n))
	child.Stderr = os.Stderr
	stdin, _ := child.StdinPipe()
	out, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		log.Fatal(err)
	}
	waitHeld(n)
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		log.Fatalf("clients: %q", line)
	}
	after = liveHeap()
	fmt.Printf("server %d %d\n", n, int64(after-before)/int64(n))
	stdin.Close()
	child.Wait()
	release()
}

func main() {
	log.SetFlags(0)
	if len(os.Args) < 3 {
		log.Fatal("usage: hijack-bench-go serve ADDR | retained N | clients ADDR N")
	}
	switch os.Args[1] {
	case "serve":
		ln := listen(os.Args[2])
		fmt.Printf("listening on http://%s\n", ln.Addr())
		select {}
	case "retained":
		n, _ := strconv.Atoi(os.Args[2])
		retained(n)
	case "clients":
		n, _ := strconv.Atoi(os.Args[3])
		conns := dial(os.Args[2], n)
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		runtime.KeepAlive(conns)
	default:
		log.Fatalf("unknown mode %q", os.Args[1])
	}
}
