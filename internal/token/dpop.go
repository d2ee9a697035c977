package token

import (
	"errors"
	"net/http"
	"slices"

	"github.com/keyward/keyward/internal/dpop"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// checkProof checks the request's DPoP proof, if it has one (RFC 9449
// §4.3, §5). The proof's htu must be the token endpoint as the metadata
// names it, whatever host the request came through. Only its signature and
// claims are checked here; its jti is used up with the token (useProof).
func (h *Handler) checkProof(r *http.Request) (*dpop.Proof, error) {
	values := dpop.HeaderValues(r.Header)
	if len(values) == 0 {
		return nil, nil
	}
	p, err := h.dpop.Check(values, dpop.Request{Method: r.Method, URL: Endpoint(h.cfg.Issuer)})
	if err != nil {
		return nil, proofError(err)
	}
	return p, nil
}

// bindProof binds the token of is to the request's DPoP key, if it sent a
// proof, and makes the proof's jti single-use.
//
// A request that authenticates with a TLS client certificate gets a token
// bound to that certificate (RFC 8705 §3); one that also sends a DPoP
// proof is refused rather than bound to both: a resource server that knows
// only one of the two mechanisms would accept the token without checking
// the other, and one bound to either would let the holder of one key pick.
func (h *Handler) bindProof(req *Request, is *issuance) error {
	p := req.proof
	if p == nil {
		return nil
	}
	if is.thumbprint != "" {
		return oauth2.Errorf(oauth2.ErrInvalidRequest, "The request authenticated with a TLS client certificate, which binds the token to it, and sent a DPoP proof: send one or the other, not both.")
	}
	// No owner: a full cache is no refusal here.
	if err := h.dpopSeen.Use("", p.JKT, p.JTI, req.Now); errors.Is(err, dpop.ErrReplayed) {
		return proofError(err)
	}
	// A full cache is no refusal: the store below refuses replays anyway.
	is.jtis = append(slices.Clip(is.jtis), storage.UsedJTI{
		Issuer: "dpop:" + p.JKT, JTI: p.JTI, ExpiresAt: req.Now.Add(h.dpop.Retention()),
	})
	return nil
}

// proofError is the token endpoint's answer to a refused proof (RFC 9449
// §5): 400 invalid_dpop_proof.
func proofError(err error) *oauth2.Error {
	desc := "the DPoP proof was used before: make a new proof for every request"
	var de *dpop.Error
	if errors.As(err, &de) {
		desc = de.Description
	}
	return (&oauth2.Error{Code: oauth2.ErrInvalidDPoPProof, Description: "Invalid DPoP proof: " + desc + "."}).WithCause(err)
}
