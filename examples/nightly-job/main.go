// Command nightly-job is an example job that calls an API with a token
// from Keyward, using its service account's key file.
//
//	go run ./examples/nightly-job -key-file key.json -api http://127.0.0.1:9000
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"time"

	"golang.org/x/oauth2"

	"github.com/keyward/keyward/client"
)

// maxAnswer bounds the API's answer the job reads: an API gone wrong
// cannot fill the job's memory.
const maxAnswer = 1 << 20

// Run lists the orders with a token for orders.read and prints them.
func Run(ctx context.Context, keyFile []byte, api string, out io.Writer) error {
	ts, err := client.TokenSource(ctx, keyFile, "orders.read")
	if err != nil {
		return err
	}
	// oauth2.Transport asks ts for a token on every request, so ts's early
	// refresh works; oauth2.NewClient would cache the token in front of it
	// until 10 s before it expires.
	hc := &http.Client{Transport: &oauth2.Transport{Source: ts}, Timeout: 30 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api+"/v1/orders", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return fmt.Errorf("the API's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		if len(body) > 200 {
			body = append(body[:200:200], "…"...)
		}
		return fmt.Errorf("the API answered %s: %q", resp.Status, body)
	}
	if len(body) > maxAnswer {
		return fmt.Errorf("the API's answer is larger than %d bytes", maxAnswer)
	}
	_, err = fmt.Fprintf(out, "%s", body)
	return err
}

func main() {
	keyFile := flag.String("key-file", os.Getenv("KEYWARD_CREDENTIALS"), "the service account's key file")
	api := flag.String("api", "http://127.0.0.1:9000", "the orders API")
	flag.Parse()
	if *keyFile == "" {
		log.Fatal("no key file: pass -key-file FILE or set KEYWARD_CREDENTIALS")
	}
	data, err := os.ReadFile(*keyFile)
	if err != nil {
		log.Fatal(err)
	}
	if err := Run(context.Background(), data, *api, os.Stdout); err != nil {
		log.Fatal(err)
	}
}
