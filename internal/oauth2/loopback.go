package oauth2

import "net"

// IsLoopbackHost reports whether host, a URL's Hostname(), is localhost
// or a loopback IP address: the hosts keyward serve, and the client
// library, take plain HTTP to without being told otherwise.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
