package client

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

type countingSource struct {
	n     int
	life  time.Duration
	now   func() time.Time
	fails bool
}

func (c *countingSource) Token() (*oauth2.Token, error) {
	if c.fails {
		return nil, errors.New("down")
	}
	c.n++
	return &oauth2.Token{AccessToken: string(rune('a' + c.n)), Expiry: c.now().Add(c.life)}, nil
}

func TestEarlyRefresh(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	base := &countingSource{life: time.Hour, now: clock}
	r := &reuseSource{base: base, now: clock}
	first, _ := r.Token()
	now = now.Add(50 * time.Minute) // 10 minutes left: more than a tenth plus jitter
	if tok, _ := r.Token(); tok != first || base.n != 1 {
		t.Fatal("refreshed too early")
	}
	now = now.Add(5 * time.Minute) // 5 minutes left: inside the refresh window
	second, _ := r.Token()
	if second == first || base.n != 2 {
		t.Fatal("not refreshed before expiry")
	}
	// A failing refresh keeps serving the still-valid token.
	base.fails = true
	now = now.Add(58 * time.Minute)
	if tok, err := r.Token(); err != nil || tok != second {
		t.Fatalf("failing refresh with a valid token: %v", err)
	}
	now = now.Add(10 * time.Minute)
	if _, err := r.Token(); err == nil {
		t.Fatal("an expired token was served")
	}
}

// TestRefreshJustEnded: a caller that read the old token just before
// another caller's refresh ended, and asks for a refresh just after,
// gets the token that refresh stored, without a second token request.
func TestRefreshJustEnded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	base := &countingSource{life: time.Hour, now: clock}
	r := &reuseSource{base: base, now: clock}
	if _, err := r.Token(); err != nil {
		t.Fatal(err)
	}
	now = now.Add(55 * time.Minute) // inside the refresh window
	var other *oauth2.Token
	r.beforeFlight = func() {
		r.beforeFlight = nil
		other, _ = r.Token() // another caller's whole refresh
	}
	tok, err := r.Token()
	if err != nil {
		t.Fatal(err)
	}
	if base.n != 2 || tok != other {
		t.Fatalf("%d token requests, the caller got %v and the other %v; want 2 and the same token", base.n, tok, other)
	}
}

// TestFailedRefreshOutlivesToken: a refresh that fails after the current
// token has expired (a token endpoint that answers only when the 30 s
// timeout ends) is an error, not the token that expired meanwhile.
func TestFailedRefreshOutlivesToken(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	base := &countingSource{life: time.Minute, now: clock}
	r := &reuseSource{base: base, now: clock}
	if _, err := r.Token(); err != nil {
		t.Fatal(err)
	}
	now = now.Add(50 * time.Second) // inside the refresh window, 10 s left
	r.base = fetchFunc(func() (*oauth2.Token, error) {
		now = now.Add(30 * time.Second)
		return nil, errors.New("timeout")
	})
	if tok, err := r.Token(); err == nil {
		t.Fatalf("got %+v, which expired during the failed refresh; want its error", tok)
	}
}

func TestRefreshJitter(t *testing.T) {
	now := time.Now()
	seen := map[time.Time]bool{}
	for range 20 {
		rt := refreshTime(&oauth2.Token{Expiry: now.Add(time.Hour)}, now)
		if rt.Before(now.Add(45*time.Minute)) || rt.After(now.Add(54*time.Minute)) {
			t.Fatalf("refresh at %v, want 6 to 9 minutes before expiry", now.Add(time.Hour).Sub(rt))
		}
		seen[rt] = true
	}
	if len(seen) < 5 {
		t.Fatal("no jitter")
	}
}

// TestExpiredOnArrival: a token that has expired by the time it arrives
// (a server's negative expires_in) is an error saying so, not a token
// handed to the caller and fetched again on every call; a still-valid
// older token is kept meanwhile.
func TestExpiredOnArrival(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tests := []struct {
		name string
		life time.Duration
	}{
		{"expires_in -1", -time.Second},
		{"expires as it arrives", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := &countingSource{life: tt.life, now: clock}
			r := &reuseSource{base: base, now: clock}
			if tok, err := r.Token(); err == nil || !strings.Contains(err.Error(), "already expired") {
				t.Fatalf("got %+v, %v; want an error saying the token has already expired", tok, err)
			}
			base.life = time.Hour
			valid, err := r.Token()
			if err != nil {
				t.Fatal(err)
			}
			base.life = tt.life
			now = now.Add(55 * time.Minute) // inside the refresh window
			if tok, err := r.Token(); err != nil || tok != valid {
				t.Fatalf("got %+v, %v; want the still-valid token", tok, err)
			}
		})
	}
}

// TestRetryAfter: a token request refused with 429 or 503 and a
// Retry-After is not sent again before then; every call meanwhile gets
// that refusal (or the still-valid token). Other refusals, and a
// Retry-After beyond 5 minutes, are not waited out that long.
func TestRetryAfter(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		status     int
		retryAfter string
		wait       time.Duration // no token request within this
	}{
		{"429 seconds", http.StatusTooManyRequests, "30", 30 * time.Second},
		{"503 seconds", http.StatusServiceUnavailable, "5", 5 * time.Second},
		{"429 HTTP-date", http.StatusTooManyRequests, start.Add(20 * time.Second).Format(http.TimeFormat), 20 * time.Second},
		{"429 capped", http.StatusTooManyRequests, "86400", maxRetryAfter},
		{"429 without", http.StatusTooManyRequests, "", 0},
		{"429 garbage", http.StatusTooManyRequests, "soon", 0},
		{"429 past date", http.StatusTooManyRequests, start.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"400", http.StatusBadRequest, "30", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := start
			requests := 0
			refusal := &oauth2.RetrieveError{Response: &http.Response{StatusCode: tt.status, Header: http.Header{}}, ErrorCode: "temporarily_unavailable"}
			if tt.retryAfter != "" {
				refusal.Response.Header.Set("Retry-After", tt.retryAfter)
			}
			r := &reuseSource{now: func() time.Time { return now }, base: fetchFunc(func() (*oauth2.Token, error) {
				requests++
				return nil, refusal
			})}
			for _, at := range []time.Duration{0, tt.wait / 2, tt.wait - time.Second} {
				now = start.Add(at)
				if _, err := r.Token(); !errors.Is(err, refusal) {
					t.Fatalf("at +%v: got %v; want the refusal", at, err)
				}
			}
			want := 1
			if tt.wait == 0 {
				want = 3
			}
			if requests != want {
				t.Fatalf("%d token requests within %v; want %d", requests, tt.wait, want)
			}
			now = start.Add(tt.wait)
			r.Token()
			if requests != want+1 {
				t.Fatalf("no token request once Retry-After (%v) has passed", tt.wait)
			}
		})
	}
}

// TestRetryAfterKeepsValidToken: while a refusal's Retry-After runs, the
// current token, still valid, is served.
func TestRetryAfterKeepsValidToken(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	base := &countingSource{life: time.Hour, now: clock}
	r := &reuseSource{base: base, now: clock}
	valid, err := r.Token()
	if err != nil {
		t.Fatal(err)
	}
	requests := 0
	r.base = fetchFunc(func() (*oauth2.Token, error) {
		requests++
		return nil, &oauth2.RetrieveError{Response: &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"60"}}}}
	})
	now = now.Add(55 * time.Minute) // inside the refresh window
	for range 3 {
		if tok, err := r.Token(); err != nil || tok != valid {
			t.Fatalf("got %+v, %v; want the still-valid token", tok, err)
		}
	}
	if requests != 1 {
		t.Fatalf("%d token requests; want 1", requests)
	}
}

// TestNilToken: a wrapped source that returns neither a token nor an
// error is an error saying so, not a panic.
func TestNilToken(t *testing.T) {
	r := Reuse(fetchFunc(func() (*oauth2.Token, error) { return nil, nil }))
	if tok, err := r.Token(); err == nil || !strings.Contains(err.Error(), "no token") {
		t.Fatalf("got %+v, %v; want an error saying the source returned no token", tok, err)
	}
}

// TestFailedRefreshHoldsOff: a refresh that fails, without a Retry-After,
// while the current token stays valid is not tried again on every call:
// for 2 s after the first failure, twice as long after each next one, at
// most a minute and a quarter of the token's remaining life, and never
// past its expiry. A success ends the hold-off.
func TestFailedRefreshHoldsOff(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	clock := func() time.Time { return now }
	base := &countingSource{life: time.Hour, now: clock}
	r := &reuseSource{base: base, now: clock}
	valid, err := r.Token()
	if err != nil {
		t.Fatal(err)
	}
	requests := 0
	failing := fetchFunc(func() (*oauth2.Token, error) {
		requests++
		return nil, errors.New("invalid_client")
	})
	r.base = failing
	at := func(d time.Duration, wantRequests int) {
		t.Helper()
		now = start.Add(d)
		if tok, err := r.Token(); err != nil || tok != valid {
			t.Fatalf("at +%v: got %+v, %v; want the still-valid token", d, tok, err)
		}
		if requests != wantRequests {
			t.Fatalf("at +%v: %d token requests; want %d", d, requests, wantRequests)
		}
	}
	// 55 minutes: inside the refresh window, 5 minutes left.
	m55 := 55 * time.Minute
	at(m55, 1)
	at(m55, 1)                               // held off: no request
	at(m55+2*time.Second-time.Nanosecond, 1) // still within 2 s
	at(m55+2*time.Second, 2)                 // then 4 s
	at(m55+6*time.Second-time.Nanosecond, 2)
	at(m55+6*time.Second, 3) // then 8 s
	at(m55+14*time.Second, 4)
	at(m55+30*time.Second, 5)
	at(m55+62*time.Second, 6) // then 64 s, 60 s under the 1-minute cap, and a quarter of the 238 s left is less: 59.5 s
	at(m55+121500*time.Millisecond-time.Nanosecond, 6)
	at(m55+121500*time.Millisecond, 7) // a quarter of the 178.5 s left: 44.625 s
	at(m55+166125*time.Millisecond-time.Nanosecond, 7)
	at(m55+166125*time.Millisecond, 8)

	// A success ends the hold-off: the next failure holds for 2 s again.
	r.base = base
	now = start.Add(m55 + 200*time.Second) // past the last hold
	fresh, err := r.Token()
	if err != nil || fresh == valid {
		t.Fatalf("got %+v, %v; want a new token", fresh, err)
	}
	valid, start, requests = fresh, now, 0
	r.base = failing
	at(m55, 1)
	at(m55+2*time.Second-time.Nanosecond, 1)
	at(m55+2*time.Second, 2)

	// Never past the token's expiry: once it has expired, every call asks.
	now = valid.Expiry
	if _, err := r.Token(); err == nil {
		t.Fatal("an expired token was served")
	}
	if requests != 3 {
		t.Fatalf("%d token requests; want one once the token expired", requests)
	}
}
