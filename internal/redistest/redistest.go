// Package redistest runs real redis-server processes on loopback for tests
// and benchmarks: each on a free port, without persistence, stopped when the
// test ends; and it pauses (SIGSTOP), kills and restarts them to inject
// faults.
//
// redis-server must be on the PATH: `make test` installs it (see
// scripts/deps.sh).
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is one redis-server process on 127.0.0.1. Its methods are safe for
// concurrent use.
type Server struct {
	mu      sync.Mutex
	port    int
	dir     string
	cluster bool // a one-node Redis Cluster holding every slot
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
}

// startTimeout is how long a server may take to answer its first PING.
const startTimeout = 10 * time.Second

// New starts a server for t on a free loopback port and stops it when t
// ends; it fails t if the server cannot start.
func New(t testing.TB) *Server { return newFor(t, false) }

// NewCluster is New for a one-node Redis Cluster that holds every slot: a
// client reaches it as a cluster (MOVED, CROSSSLOT and all).
func NewCluster(t testing.TB) *Server { return newFor(t, true) }

func newFor(t testing.TB, cluster bool) *Server {
	t.Helper()
	s, err := start(cluster)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Start starts a server on a free loopback port. Stop stops it.
func Start() (*Server, error) { return start(false) }

func start(cluster bool) (*Server, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, errors.New("redistest: redis-server is not installed: run `make test` (scripts/deps.sh installs it), or install it (Debian: apt-get install -y redis-server)")
	}
	dir, err := os.MkdirTemp("", "redistest")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, cluster: cluster}
	for range 5 { // a port found free may be taken before the server binds it
		if s.port, err = freePort(); err != nil {
			break
		}
		if err = s.start(); err == nil {
			return s, nil
		}
	}
	os.RemoveAll(dir)
	return nil, err
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start runs redis-server on s.port and waits until it answers. s.mu must
// be held, or s not yet shared.
func (s *Server) start() error {
	args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(s.port),
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--daemonize", "no", "--loglevel", "warning"}
	if s.cluster {
		os.Remove(filepath.Join(s.dir, "nodes.conf")) // a restarted node starts empty
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	}
	cmd := exec.Command("redis-server", args...)
	cmd.SysProcAttr = sysProcAttr()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-done:
			return fmt.Errorf("redistest: redis-server on port %d exited: %s", s.port, strings.TrimSpace(out.String()))
		default:
		}
		if ping(s.addr(), 200*time.Millisecond) == nil {
			s.cmd, s.done = cmd, done
			if s.cluster {
				return s.claimSlots(deadline)
			}
			return nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("redistest: redis-server on port %d did not answer within %v", s.port, startTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ping sends PING to addr and checks the answer.
func ping(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("redistest: PING answered %q", line)
	}
	return nil
}

// claimSlots gives a new cluster node every slot and waits until the
// cluster is up.
func (s *Server) claimSlots(deadline time.Time) error {
	if r, err := command(s.addr(), "CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil || r != "+OK" {
		return fmt.Errorf("redistest: CLUSTER ADDSLOTSRANGE: %q %v", r, err)
	}
	for time.Now().Before(deadline) {
		if r, err := command(s.addr(), "CLUSTER", "INFO"); err == nil && strings.Contains(r, "cluster_state:ok") {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("redistest: the cluster did not come up")
}

// command sends one command to addr and returns its reply: a status or
// error line as is, a bulk string's content.
func command(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	req := fmt.Sprintf("*%d\r\n", len(args))
	for _, a := range args {
		req += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(req)); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSpace(line)
	if n, err := strconv.Atoi(strings.TrimPrefix(line, "$")); err == nil && strings.HasPrefix(line, "$") && n >= 0 {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return string(b), err
	}
	return line, nil
}

func (s *Server) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Addr returns the server's host:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr()
}

// URL returns the server's redis:// URL; for a cluster node, the URL that
// makes redisstore.Open use a cluster client.
func (s *Server) URL() string {
	if s.cluster {
		return "redis://" + s.Addr() + "?addr=" + s.Addr()
	}
	return "redis://" + s.Addr()
}

// signal sends sig to the running server.
func (s *Server) signal(sig os.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return errors.New("redistest: the server is not running")
	}
	return s.cmd.Process.Signal(sig)
}

// Pause stops the server's process (SIGSTOP): connections stay open and
// nothing is answered until Resume.
func (s *Server) Pause() error { return s.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT); it answers what it was sent
// meanwhile.
func (s *Server) Resume() error { return s.signal(syscall.SIGCONT) }

// Kill kills the server (SIGKILL) and waits for it to exit: its data and
// loaded scripts are lost.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill()
}

func (s *Server) kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGCONT) // a paused process dies only once continued
	s.cmd.Process.Kill()
	<-s.done
	s.cmd, s.done = nil, nil
}

// Restart kills the server if it runs and starts a new, empty one on the
// same port.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill()
	var err error
	for range 50 { // the port may linger a moment after the kill
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// Stop kills the server and removes its directory. It is safe to call more
// than once.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill()
	if s.dir != "" {
		os.RemoveAll(s.dir)
		s.dir = ""
	}
}
