package token

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/keyward/keyward/internal/dpop"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// checkProof checks the request's DPoP proof, if it has one (RFC 9449
// §4.3, §5), and its nonce where nonces are required (§8). The proof's htu
// must be the token endpoint as the metadata names it, whatever host the
// request came through. Only its signature and claims are checked here;
// its jti is used up with the token (bindProof).
func (h *Handler) checkProof(r *http.Request, now time.Time) (*dpop.Proof, error) {
	values := dpop.HeaderValues(r.Header)
	if len(values) == 0 {
		return nil, nil
	}
	req := h.proofURL
	req.Method = r.Method
	p, err := h.dpop.Check(values, req)
	if err != nil {
		return nil, proofError(err)
	}
	if n := h.cfg.DPoPNonces; n != nil && !n.Valid(p.Nonce, now) {
		desc := "This server requires DPoP proofs to carry the nonce it provides: make a new proof with the nonce of the DPoP-Nonce header."
		if p.Nonce != "" {
			desc = "The DPoP proof's nonce is not one this server provided recently: make a new proof with the nonce of the DPoP-Nonce header."
		}
		return nil, &oauth2.Error{Code: oauth2.ErrUseDPoPNonce, Description: desc,
			Header: http.Header{dpop.NonceHeader: {n.Current(now)}}}
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
