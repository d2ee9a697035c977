package oauth2

import "time"

// ReplayMargin is how long past the last instant a one-time JWT (a
// JWT-bearer or client assertion's jti, a DPoP proof's) is accepted its
// use is remembered: a replica whose clock is behind the one that forgets
// it still accepts it for that much longer. Replicas keep their clocks in
// step, as NTP does, well within it. It also covers a store that rounds
// the time to milliseconds, and the moments between checking a JWT and
// recording its use, which read the clock apart.
const ReplayMargin = time.Second
