package server

import "net/http"

// contentSecurityPolicy lets the browser client load its own files and
// nothing else: scripts only from natterd (no inline script, no eval; only
// WebAssembly compilation, which Go's wasm client needs), connections only
// back to natterd (its WebSocket), images and media also from blob: and
// data: URLs (pictures and voice notes the client decrypts in memory), no
// plugins, no <base>, no form posts, no framing. See docs/security.md.
const contentSecurityPolicy = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; " +
	"img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; worker-src 'self'; " +
	"manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// hstsMaxAge is the Strict-Transport-Security value: a year.
const hstsMaxAge = "max-age=31536000"

// securityHeaders sets the browser security headers on every response of
// next, before next runs, so that its error paths (404, 429 on /ws, 500)
// carry them too. hsts adds Strict-Transport-Security: only with a
// certificate browsers accept (an operator's or one from ACME). With the
// self-made certificate a browser's user has clicked through a warning;
// HSTS would turn that warning into a wall that cannot be clicked through
// for a year, even after a real certificate is set up under another name.
func securityHeaders(next http.Handler, hsts bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Permissions-Policy", "camera=(self), microphone=(), geolocation=()")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if hsts {
			h.Set("Strict-Transport-Security", hstsMaxAge)
		}
		next.ServeHTTP(w, r)
	})
}
