// Command orders-api is an example API protected by Keyward: every route
// needs a valid access token, with a scope per route.
//
//	go run ./examples/orders-api -issuer http://127.0.0.1:8080 -audience https://orders.internal
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keyward/keyward/verify"
)

// NewHandler returns the API's routes, each behind the scope it needs.
func NewHandler(v *verify.Verifier, log *slog.Logger) http.Handler {
	auth := verify.Middleware(v, verify.OnError(func(r *http.Request, err error) {
		log.Info("refused", "path", r.URL.Path, "err", err)
	}))
	mux := http.NewServeMux()
	mux.Handle("GET /v1/orders", auth(verify.RequireScopes("orders.read")(http.HandlerFunc(listOrders))))
	mux.Handle("POST /v1/orders", auth(verify.RequireScopes("orders.write")(http.HandlerFunc(createOrder))))
	return mux
}

func listOrders(w http.ResponseWriter, r *http.Request) {
	c, _ := verify.ClaimsFromContext(r.Context())
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"orders": []string{"o-1", "o-2"}, "caller": c.ClientEmail})
}

func createOrder(w http.ResponseWriter, r *http.Request) {
	c, _ := verify.ClaimsFromContext(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{"order": "o-3", "created_by": c.ClientEmail})
}

func main() {
	issuer := flag.String("issuer", "http://127.0.0.1:8080", "Keyward's issuer URL")
	audience := flag.String("audience", "https://orders.internal", "this API's identifier")
	listen := flag.String("listen", "127.0.0.1:9000", "address to listen on")
	flag.Parse()
	// Ctrl-C, or SIGTERM from a container runtime or systemd stopping it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	v, err := verify.New(ctx, *issuer, *audience)
	if err != nil {
		log.Fatal(err)
	}
	logger := slog.Default()
	logger.Info("orders-api listening", "addr", *listen)
	// A client that sends its headers slowly, or idles, does not hold a
	// connection for ever.
	srv := &http.Server{Addr: *listen, Handler: NewHandler(v, logger),
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		// Requests in flight finish; new ones are refused.
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
	<-done
}
