//! Who the client is behind reverse proxies (`ROSTER_TRUSTED_PROXIES`).
//!
//! `X-Forwarded-For` is written by every proxy on the way, each appending the address it saw,
//! and anyone may send one. So it is read only when the TCP peer is a trusted proxy, from the
//! right: the first hop that is not itself a trusted proxy is the client. Everything left of
//! it was written by the client and is ignored.

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

/// The client's IP: the TCP `peer`, or, when the peer is in `trusted`, the right-most
/// `X-Forwarded-For` hop not in `trusted`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = peer.to_canonical();
    if !is_trusted(&peer) {
        return peer;
    }
    // Several headers are one list, in order (RFC 9110, 5.3).
    let hops = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
    let mut client = peer;
    for hop in hops.collect::<Vec<_>>().into_iter().rev() {
        // A hop that does not parse was not written by a proxy we trust: stop at the last
        // address we could believe.
        let Ok(ip) = hop.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()) else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::client_ip;
    use crate::config::parse_trusted_proxies;
    use axum::http::HeaderMap;

    fn ip(peer: &str, forwarded: &[&str], trusted: &str) -> String {
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        client_ip(peer.parse().unwrap(), &headers, &parse_trusted_proxies(trusted).unwrap()).to_string()
    }

    #[test]
    fn forwarded_for_is_read_only_from_trusted_peers_and_from_the_right() {
        // An untrusted peer's header is ignored.
        assert_eq!(ip("203.0.113.9", &["198.51.100.1"], ""), "203.0.113.9");
        assert_eq!(ip("203.0.113.9", &["198.51.100.1"], "10.0.0.0/8"), "203.0.113.9");
        // A trusted peer: the right-most hop that is not a trusted proxy.
        assert_eq!(ip("10.0.0.2", &["1.2.3.4, 198.51.100.1, 10.0.0.7"], "10.0.0.0/8"), "198.51.100.1");
        // Several headers form one list.
        assert_eq!(ip("10.0.0.2", &["1.2.3.4", "198.51.100.1"], "10.0.0.0/8"), "198.51.100.1");
        // A trusted peer without the header, or with nothing but trusted hops.
        assert_eq!(ip("10.0.0.2", &[], "10.0.0.0/8"), "10.0.0.2");
        assert_eq!(ip("10.0.0.2", &["10.0.0.3"], "10.0.0.0/8"), "10.0.0.3");
        // Garbage stops the walk at the last believable address.
        assert_eq!(ip("10.0.0.2", &["1.2.3.4, not-an-ip"], "10.0.0.0/8"), "10.0.0.2");
        // IPv4-mapped IPv6 peers match IPv4 ranges.
        assert_eq!(ip("::ffff:10.0.0.2", &["198.51.100.1"], "10.0.0.0/8"), "198.51.100.1");
    }
}
