package verify_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/keyward/keyward/verify"
)

// setNX is the one call of a shared store a ReplayCache needs: set key,
// with a time to live, only if it is not set, and report whether it was
// set. With github.com/redis/go-redis it is
//
//	rdb.SetNX(ctx, key, 1, ttl).Result()
//
// on a Redis whose maxmemory-policy is noeviction, so that no key is
// forgotten before it expires.
type setNX func(ctx context.Context, key string, ttl time.Duration) (bool, error)

// redisReplayCache is a verify.ReplayCache on a shared store.
type redisReplayCache struct{ setNX setNX }

func (c redisReplayCache) Seen(ctx context.Context, key string, until time.Time) (bool, error) {
	set, err := c.setNX(ctx, "dpop-jti:"+key, time.Until(until))
	if err != nil {
		return false, err // answered 503: neither a replay nor a fresh proof
	}
	return !set, nil
}

// Every replica of the orders API checks DPoP proofs against one store,
// so a proof accepted by one replica is refused by all the others.
func ExampleWithDPoPReplayCache() {
	var rdbSetNX setNX // the shared store's client, as above
	v, err := verify.New(context.Background(), "https://keyward.example", "https://orders.example",
		verify.WithDPoPReplayCache(redisReplayCache{setNX: rdbSetNX}))
	if err != nil {
		log.Fatal(err)
	}
	api := http.NewServeMux() // the API's handlers
	log.Fatal(http.ListenAndServe(":8080", verify.Middleware(v, verify.WithPublicURL("https://orders.example"))(api)))
}
