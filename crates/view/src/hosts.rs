//! Which `Host` names the app answers to. A web page on another site can make a browser send
//! requests to 127.0.0.1 under its own name (DNS rebinding: `evil.example` is made to resolve
//! to 127.0.0.1 after the page has loaded), and then read the answers as its own. The browser
//! still sends `Host: evil.example`, so the app refuses every name it was not started under,
//! as development servers such as Jupyter do.
//!
//! Always allowed: `localhost`, `127.0.0.1`, `[::1]` and the address the server is bound to.
//! Bound to every address (`0.0.0.0`, `::`), the app also answers to any IP address literal
//! (no DNS answer can rebind a literal). Other names are added by the user
//! ([`AllowedHosts::allow`], `editshard view --allow-host NAME`).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The names a server answers to.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    /// Lower-case host names and IP literals (IPv6 without brackets).
    names: BTreeSet<String>,
    /// Bound to every address: any IP literal is the server's.
    any_ip: bool,
}

impl Default for AllowedHosts {
    /// The loopback names only (an app not bound to anything yet).
    fn default() -> Self {
        AllowedHosts::for_address(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }
}

impl AllowedHosts {
    /// The names of a server bound to `ip`.
    pub fn for_address(ip: IpAddr) -> AllowedHosts {
        let mut names: BTreeSet<String> = ["localhost", "127.0.0.1", "::1"]
            .into_iter()
            .map(str::to_string)
            .collect();
        names.insert(ip.to_string());
        AllowedHosts {
            names,
            any_ip: ip.is_unspecified(),
        }
    }

    /// Also answers to `name` (a host name or an IP address; a port, brackets and case are
    /// ignored).
    pub fn allow(&mut self, name: &str) {
        if let Some(host) = host_of(name) {
            self.names.insert(host);
        }
    }

    /// Whether a request whose `Host` header (or absolute URI authority) is `value` is for
    /// this server.
    pub fn allows(&self, value: &str) -> bool {
        let Some(host) = host_of(value) else {
            return false;
        };
        if self.names.contains(&host) {
            return true;
        }
        self.any_ip && host.parse::<IpAddr>().is_ok()
    }

    /// The names, for a refusal's message.
    pub fn describe(&self) -> String {
        let mut shown: Vec<String> = self
            .names
            .iter()
            .map(|n| {
                if n.parse::<Ipv6Addr>().is_ok() {
                    format!("[{n}]")
                } else {
                    n.clone()
                }
            })
            .collect();
        if self.any_ip {
            shown.push("any IP address".to_string());
        }
        shown.join(", ")
    }
}

/// The host of a `Host` header value: lower case, without port, brackets or a final dot;
/// `None` when it is not a plausible host.
pub fn host_of(value: &str) -> Option<String> {
    let value = value.trim();
    let host = if let Some(rest) = value.strip_prefix('[') {
        // `[v6]` or `[v6]:port`
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        inside.parse::<Ipv6Addr>().ok()?;
        inside
    } else if value.matches(':').count() > 1 {
        // A bare IPv6 literal (as the user may write it in --allow-host).
        value.parse::<Ipv6Addr>().ok()?;
        value
    } else {
        match value.split_once(':') {
            Some((h, port)) if is_port(port) => h,
            Some(_) => return None,
            None => value,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let plausible = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    plausible.then_some(host)
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_with_or_without_ports() {
        let hosts = AllowedHosts::for_address("127.0.0.1".parse().unwrap());
        for ok in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "localhost",
            "LocalHost:80",
            "localhost.",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "10.0.0.1",
            "",
            "127.0.0.1:x",
            "[::1",
            "[evil]:80",
            "a b",
        ] {
            assert!(!hosts.allows(bad), "{bad:?}");
        }
    }

    #[test]
    fn names_can_be_added_and_every_address_allows_ip_literals() {
        let mut hosts = AllowedHosts::for_address("0.0.0.0".parse().unwrap());
        assert!(hosts.allows("192.168.1.20:8080"));
        assert!(hosts.allows("[fe80::1]:8080"));
        assert!(!hosts.allows("myhost.lan:8080"));
        hosts.allow("MyHost.lan");
        assert!(hosts.allows("myhost.lan:8080"));
        assert!(hosts.describe().contains("myhost.lan"));

        let mut bound = AllowedHosts::for_address("192.168.1.20".parse().unwrap());
        assert!(bound.allows("192.168.1.20:9000"));
        assert!(!bound.allows("192.168.1.21"), "only the bound address");
        bound.allow("fd00::5");
        assert!(bound.allows("[fd00::5]:1"));
    }
}
