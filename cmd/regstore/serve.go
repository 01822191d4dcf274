package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/server"
)

var serveCommand = &command{
	name:     "serve",
	synopsis: "serve [--addr HOST:PORT] [--read-only] [--delete] [--tls-cert FILE --tls-key FILE] [--quiet] ROOT",
	args:     "ROOT", min: 1, max: 1,
	help: `
Serves the tree over the OCI distribution API (v1.1), as a registry would:
pulls, pushes (monolithic, chunked, cross-repository mounts), tag lists and
the catalog with paging, the referrers API, and with --delete the deletes of
manifests, tags and blobs. What is pushed is written as the registry writes
it, so a registry (or any regstore command) can serve or process the tree
afterwards, or at the same time. ROOT is created when missing, unless
--read-only.

There is no authentication and no authorization: anyone who can reach the
address can read and, unless --read-only, write. Bind it to loopback (the
default) or put a proxy that authenticates in front of it.

Each request is logged on standard error (--quiet turns that off). SIGINT or
SIGTERM stops accepting connections and waits up to 10 seconds for the
requests in progress.`,
	flags: func(fset *flag.FlagSet) action {
		addr := fset.String("addr", "127.0.0.1:5000", "listen on `host:port`")
		readOnly := fset.Bool("read-only", false, "refuse every write, as the registry's read-only mode does")
		del := fset.Bool("delete", false, "allow deleting manifests, tags and blobs (the registry's storage.delete.enabled)")
		cert := fset.String("tls-cert", "", "serve HTTPS with this certificate `file` (PEM), with --tls-key")
		key := fset.String("tls-key", "", "the certificate's private key `file` (PEM)")
		quiet := fset.Bool("quiet", false, "do not log requests")
		return func(ctx context.Context, inv *invocation) error {
			if (*cert == "") != (*key == "") {
				return usagef("--tls-cert and --tls-key go together")
			}
			opts := server.Options{ReadOnly: *readOnly}
			if *del {
				opts = opts.AllDeletes()
			}
			cfg := serveConfig{addr: *addr, opts: opts, certFile: *cert, keyFile: *key, root: inv.args[0]}
			if !*quiet {
				cfg.log = inv.stderr
			}
			return runServe(ctx, cfg, inv.stdout, inv.stderr)
		}
	},
}

func init() {
	exitHelp["serve"] = "0 after a signal stopped it, 2 on a usage error or when it cannot serve."
}

// serveConfig is what runServe needs.
type serveConfig struct {
	root              string
	addr              string
	opts              server.Options
	certFile, keyFile string
	log               io.Writer // access log; nil for none
	ready             func(net.Addr)
}

// runServe serves root until ctx is done, then shuts down gracefully.
func runServe(ctx context.Context, cfg serveConfig, stdout, stderr io.Writer) error {
	open := createStore
	if cfg.opts.ReadOnly {
		open = func(root string) (*regstore.Store, func(), error) { return openStore(root, false) }
	}
	s, closeStore, err := open(cfg.root)
	if err != nil {
		return err
	}
	defer closeStore()
	var h http.Handler = server.New(s, cfg.opts)
	if cfg.log != nil {
		h = accessLog(h, cfg.log)
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	scheme := "http"
	if cfg.certFile != "" {
		scheme = "https"
	}
	fmt.Fprintf(stderr, "regstore serve: serving %s on %s://%s\n", cfg.root, scheme, ln.Addr())
	if cfg.ready != nil {
		cfg.ready(ln.Addr())
	}
	done := make(chan error, 1)
	go func() {
		if cfg.certFile != "" {
			done <- srv.ServeTLS(ln, cfg.certFile, cfg.keyFile)
		} else {
			done <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintf(stderr, "regstore serve: shutting down\n")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("requests still in progress after 10s were cut off: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// accessLog logs each request on w when it is answered, in the common log
// format's spirit: client, method, path, status, bytes sent, duration.
func accessLog(h http.Handler, w io.Writer) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		lw := &loggedWriter{ResponseWriter: rw, status: http.StatusOK}
		h.ServeHTTP(lw, r)
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		fmt.Fprintf(w, "%s %s %s %q %d %d %s\n", start.UTC().Format(time.RFC3339), host, r.Method,
			r.URL.RequestURI(), lw.status, lw.n, time.Since(start).Round(time.Microsecond))
	})
}

type loggedWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (l *loggedWriter) WriteHeader(code int) {
	l.status = code
	l.ResponseWriter.WriteHeader(code)
}

func (l *loggedWriter) Write(p []byte) (int, error) {
	n, err := l.ResponseWriter.Write(p)
	l.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (l *loggedWriter) Unwrap() http.ResponseWriter { return l.ResponseWriter }
