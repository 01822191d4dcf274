package s3_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	regs3 "github.com/regstore/regstore/s3"
	"github.com/stretchr/testify/require"
)

// The tests run against a real S3 server: versitygw with its posix backend
// in a temporary directory, started once for the package on loopback.
const (
	accessKey = "testaccess"
	secretKey = "testsecret123"
	bucket    = "regstore"
	region    = "us-east-1"

	installHint = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"
)

// server is the running versitygw; nil when it is not installed (locally
// the tests then skip).
var server *s3Server

type s3Server struct {
	Endpoint string // http://127.0.0.1:PORT
	Port     int
	Dir      string // the posix backend's directory: <Dir>/<bucket>/<key>
	Log      string // the server's output
	cmd      *exec.Cmd
	exited   chan struct{}
}

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	bin := findBinary("versitygw")
	if bin == "" {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "FAIL: versitygw not found on PATH or in GOPATH/bin; install it with: %s\n", installHint)
			return 1
		}
		return m.Run() // tests skip through needServer
	}
	s, err := startS3Server(bin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: start versitygw: %v\n", err)
		return 1
	}
	defer s.stop()
	if err := s.createBucket(bucket); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: create bucket: %v\n", err)
		return 1
	}
	server = s
	defer func() {
		if genDir != "" {
			os.RemoveAll(genDir)
		}
	}()
	return m.Run()
}

// findBinary looks for name on PATH, then in GOPATH/bin.
func findBinary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = string(out[:len(out)-1])
		}
	}
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(gopath, "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startS3Server(bin string) (*s3Server, error) {
	dir, err := os.MkdirTemp("", "regstore-s3-*")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, "--port", addr, "--health", "/health", "--quiet", "posix", dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+accessKey, "ROOT_SECRET_KEY="+secretKey)
	logf, err := os.CreateTemp("", "regstore-versitygw-*.log")
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	detach(cmd)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &s3Server{Endpoint: "http://" + addr, Port: port, Dir: dir, Log: logf.Name(), cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.exited) }()
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(15 * time.Second); ; {
		select {
		case <-s.exited:
			os.RemoveAll(dir)
			out, _ := os.ReadFile(s.Log)
			os.Remove(s.Log)
			return nil, fmt.Errorf("versitygw exited: %v\n%s", cmd.ProcessState, out)
		default:
		}
		resp, err := client.Get(s.Endpoint + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("no answer on %s/health within 15s: %v", s.Endpoint, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the server (by its process group id) and removes its data.
func (s *s3Server) stop() {
	terminate(s.cmd)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		kill(s.cmd)
		<-s.exited
	}
	os.RemoveAll(s.Dir)
	os.Remove(s.Log)
}

// client is a plain SDK client for the server, without regstore.
func (s *s3Server) client() *awss3.Client {
	return awss3.New(awss3.Options{
		Region: region, BaseEndpoint: aws.String(s.Endpoint), UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// createBucket makes a bucket with a signed PUT.
func (s *s3Server) createBucket(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := s.client().CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(name)})
	return err
}

func needServer(t testing.TB) {
	t.Helper()
	if server == nil {
		t.Skip("versitygw is not installed; run: " + installHint)
	}
}

var roots atomic.Int64

// uniqueRoot is a fresh root directory in the shared bucket.
func uniqueRoot(prefix string) string {
	return fmt.Sprintf("/%s-%d/", prefix, roots.Add(1))
}

// newFS is a backend on the test server under root in the shared bucket.
func newFS(t testing.TB, root string) *regs3.FS {
	t.Helper()
	needServer(t)
	f, err := regs3.New(context.Background(), regs3.Config{
		Bucket: bucket, Region: region, Endpoint: server.Endpoint, PathStyle: true,
		AccessKey: accessKey, SecretKey: secretKey, RootDirectory: root,
		PartSize: regs3.MinPartSize,
	})
	require.NoError(t, err, "s3.New")
	return f
}

// newFSAt is newFS for an endpoint other than the server's own (a proxy).
func newFSAt(t testing.TB, endpoint, root string) *regs3.FS {
	t.Helper()
	f, err := regs3.New(context.Background(), regs3.Config{
		Bucket: bucket, Region: region, Endpoint: endpoint, PathStyle: true,
		AccessKey: accessKey, SecretKey: secretKey, RootDirectory: root,
	})
	require.NoError(t, err, "s3.New(%s)", endpoint)
	return f
}
