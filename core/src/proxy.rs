//! Which requests go through an HTTP proxy, decided as curl, Go and Node's
//! proxy tools decide it.
//!
//! The SDK's HTTP client knows how to use a proxy (a CONNECT tunnel for
//! `https://`, absolute-form requests for `http://`, Basic auth from the URL),
//! and client.rs hands the connection work to it. What it does not do well is
//! choose: its `NO_PROXY` rules (hyper-util's) cannot name a port
//! (`minio.internal:9000`), a `*` there does not match an IP address, and it
//! reads the process environment on the first request rather than when a
//! backend is built (and a worker thread's `process.env` is not the process
//! environment at all). So the JS layer passes the variables it sees, they are
//! read here once per backend, and client.rs asks [`NoProxy::bypasses`] for
//! each request's host.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

/// A proxy URL. Its user and password (Basic auth for the proxy) stay in it
/// for the SDK, and nowhere else: `Debug` and [`ProxyUrl::shown`] leave them out.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    full: String,
    shown: String,
    tls: bool,
}

impl ProxyUrl {
    /// Parses `http://[user:pass@]host[:port]` or `https://…`; a URL without a
    /// scheme is `http://`, as curl reads it. The message never repeats the value
    /// (it may hold a password).
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        let with_scheme = if value.contains("://") { value.to_owned() } else { format!("http://{value}") };
        let uri: http::Uri = with_scheme.parse().map_err(|_| "is not a URL such as http://proxy.internal:3128".to_owned())?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(s) if s.starts_with("socks") => {
                return Err("names a SOCKS proxy; only http:// and https:// proxies are supported".to_owned())
            }
            _ => return Err("must be an http:// or https:// URL".to_owned()),
        };
        let authority = uri.authority().ok_or("must name a host")?;
        let host_port = authority.as_str().rsplit_once('@').map_or(authority.as_str(), |(_, hp)| hp);
        if uri.host().is_none_or(str::is_empty) {
            return Err("must name a host".to_owned());
        }
        if uri.query().is_some() {
            return Err("must not contain a query string".to_owned());
        }
        let scheme = if tls { "https" } else { "http" };
        let full = format!("{scheme}://{}", authority.as_str());
        Ok(ProxyUrl { full, shown: format!("{scheme}://{host_port}"), tls })
    }

    /// The URL as the SDK needs it, credentials included; never show it.
    pub(crate) fn with_credentials(&self) -> &str {
        &self.full
    }

    /// `scheme://host:port`, without credentials.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// An `https://` proxy: the connection to the proxy itself needs TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// A host to match: a name (and its subdomains), an address, or a network.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostRule {
    Domain(String),
    Ip(IpAddr),
    Net(IpAddr, u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    host: HostRule,
    /// Only this port, when the entry named one.
    port: Option<u16>,
}

/// `NO_PROXY` rules: hosts reached directly even though a proxy is set.
///
/// Entries are separated by commas (or spaces). `*` alone matches every host.
/// A name matches itself and its subdomains (`example.com`, `.example.com`
/// and `*.example.com` all match `example.com` and `s3.example.com`, as in
/// curl). An IP address matches that address, `10.0.0.0/8` a network (no DNS
/// lookup is made: `localhost` does not match `127.0.0.1`). Any entry may end
/// in `:port` (`[::1]:9000` for IPv6), then it matches only that port (80 or
/// 443 when the URL names none). Case and a trailing dot do not matter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    all: bool,
    rules: Vec<Rule>,
    text: String,
}

impl NoProxy {
    /// Parses a `NO_PROXY` value. Nothing is an error: an entry that is not
    /// understood is a host name that matches nothing, as in curl.
    pub fn parse(text: &str) -> Self {
        let mut out = NoProxy { text: text.trim().to_owned(), ..Default::default() };
        for entry in text.split(|c: char| c == ',' || c.is_whitespace()).filter(|e| !e.is_empty()) {
            if entry == "*" {
                out.all = true;
            } else if let Some(rule) = parse_rule(entry) {
                out.rules.push(rule);
            }
        }
        out
    }

    /// No rule at all: every request goes through the proxy.
    pub fn is_empty(&self) -> bool {
        !self.all && self.rules.is_empty()
    }

    /// The value as given, trimmed.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether a request to `host` (as in a URL: IPv6 in brackets allowed) on
    /// `port` goes direct.
    pub fn bypasses(&self, host: &str, port: u16) -> bool {
        if self.all {
            return true;
        }
        let host = normal_host(host);
        let ip: Option<IpAddr> = host.parse().ok();
        self.rules.iter().any(|rule| {
            rule.port.is_none_or(|p| p == port)
                && match (&rule.host, ip) {
                    (HostRule::Ip(a), Some(ip)) => *a == ip,
                    (HostRule::Net(net, bits), Some(ip)) => in_network(ip, *net, *bits),
                    (HostRule::Domain(d), None) => host == *d || host.strip_suffix(d.as_str()).is_some_and(|sub| sub.ends_with('.')),
                    _ => false,
                }
        })
    }

    /// Whether a request to `url` goes direct; an unreadable URL does not.
    pub fn bypasses_url(&self, url: &str) -> bool {
        let Ok(uri) = url.parse::<http::Uri>() else { return false };
        let Some(host) = uri.host() else { return false };
        let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
        self.bypasses(host, port)
    }
}

/// Lower case, without IPv6 brackets or a trailing dot.
fn normal_host(host: &str) -> String {
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn parse_rule(entry: &str) -> Option<Rule> {
    // `[v6]:port`, `v4:port`, `name:port`; a bare IPv6 address has colons of its own.
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        (addr, port)
    } else if entry.parse::<IpAddr>().is_ok() || entry.contains('/') {
        (entry, None)
    } else {
        match entry.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse().ok()?)),
            None => (entry, None),
        }
    };
    let host = normal_host(host);
    if let Some((addr, bits)) = host.split_once('/') {
        let addr: IpAddr = addr.parse().ok()?;
        let bits: u8 = bits.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        return (bits <= max).then_some(Rule { host: HostRule::Net(addr, bits), port });
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(Rule { host: HostRule::Ip(ip), port });
    }
    let name = host.strip_prefix("*.").or_else(|| host.strip_prefix('.')).unwrap_or(&host);
    (!name.is_empty()).then(|| Rule { host: HostRule::Domain(name.to_owned()), port })
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - bits as u32).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - bits as u32).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The first variable of `names` that is set and not blank, with its value.
fn first<'a>(vars: &'a HashMap<String, String>, names: &[&'static str]) -> Option<(&'static str, &'a str)> {
    names.iter().find_map(|n| vars.get(*n).map(|v| v.trim()).filter(|v| !v.is_empty()).map(|v| (*n, v)))
}

/// The proxy the environment names for an `https` (or plain `http`)
/// endpoint: `https_proxy` / `HTTPS_PROXY` (`http_proxy` / `HTTP_PROXY`), then
/// `all_proxy` / `ALL_PROXY`; lower case first, as curl, Python and Node's
/// proxy-from-env read them. Under CGI (`REQUEST_METHOD` set) `HTTP_PROXY`
/// may come from a request header ("httpoxy"), so it is ignored there, as
/// curl and Go do. Returns the variable's name and its value.
pub(crate) fn proxy_variable(vars: &HashMap<String, String>, https: bool) -> Option<(&'static str, &str)> {
    let cgi = vars.get("REQUEST_METHOD").is_some_and(|m| !m.is_empty());
    let scheme: &[&'static str] = match (https, cgi) {
        (true, _) => &["https_proxy", "HTTPS_PROXY"],
        (false, false) => &["http_proxy", "HTTP_PROXY"],
        (false, true) => &["http_proxy"],
    };
    first(vars, scheme).or_else(|| first(vars, &["all_proxy", "ALL_PROXY"]))
}

/// `no_proxy` / `NO_PROXY` (lower case first), and the variable's name.
pub(crate) fn no_proxy_variable(vars: &HashMap<String, String>) -> Option<(&'static str, NoProxy)> {
    first(vars, &["no_proxy", "NO_PROXY"]).map(|(name, value)| (name, NoProxy::parse(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_matches_names_addresses_networks_and_ports() {
        let n = NoProxy::parse("example.com, .internal,*.corp.net 127.0.0.1,10.0.0.0/8,[::1]:9000,minio:9000,::2");
        let cases = [
            ("example.com", 443, true),
            ("s3.example.com", 443, true),
            ("EXAMPLE.COM.", 80, true),
            ("notexample.com", 443, false),
            ("internal", 80, true),
            ("a.b.internal", 80, true),
            ("corp.net", 80, true),
            ("x.corp.net", 80, true),
            ("127.0.0.1", 9000, true),
            ("127.0.0.2", 9000, false),
            ("10.1.2.3", 443, true),
            ("11.1.2.3", 443, false),
            ("[::1]", 9000, true),
            ("[::1]", 9001, false),
            ("::2", 80, true),
            ("minio", 9000, true),
            ("minio", 9001, false),
            ("localhost", 80, false),
        ];
        for (host, port, bypass) in cases {
            assert_eq!(n.bypasses(host, port), bypass, "{host}:{port}");
        }
    }

    #[test]
    fn a_star_matches_every_host_even_an_address() {
        let n = NoProxy::parse("*");
        assert!(n.bypasses("127.0.0.1", 9000) && n.bypasses("s3.amazonaws.com", 443) && n.bypasses("[::1]", 1));
        assert!(NoProxy::parse("").is_empty());
        // Not a wildcard inside a list entry: `*.x` is the domain x.
        assert!(!NoProxy::parse("*.x").bypasses("127.0.0.1", 80));
    }

    #[test]
    fn urls_use_the_scheme_default_port() {
        let n = NoProxy::parse("host:443,other:80");
        assert!(n.bypasses_url("https://host/bucket/key?x=1"));
        assert!(!n.bypasses_url("http://host/bucket"));
        assert!(n.bypasses_url("http://other/"));
        assert!(!n.bypasses_url("not a url"));
    }

    #[test]
    fn proxy_urls_keep_credentials_out_of_sight() {
        let p = ProxyUrl::parse("http://user:p%40ss@proxy.internal:3128/").unwrap();
        assert_eq!(p.shown(), "http://proxy.internal:3128");
        assert_eq!(p.with_credentials(), "http://user:p%40ss@proxy.internal:3128");
        assert!(!format!("{p:?}").contains("p%40ss"));
        assert_eq!(ProxyUrl::parse("proxy:8080").unwrap().shown(), "http://proxy:8080");
        assert!(ProxyUrl::parse("https://proxy").unwrap().is_tls());
        for bad in ["socks5://proxy:1080", "ftp://proxy", "http://", "http://user:secret@/x"] {
            let err = ProxyUrl::parse(bad).unwrap_err();
            assert!(!err.contains("secret"), "{bad}: {err}");
        }
    }

    #[test]
    fn variables_lower_case_first_then_all_proxy_and_httpoxy() {
        let vars = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>();
        let v = vars(&[("HTTPS_PROXY", "http://upper:1"), ("https_proxy", "http://lower:1"), ("ALL_PROXY", "http://all:1")]);
        assert_eq!(proxy_variable(&v, true), Some(("https_proxy", "http://lower:1")));
        assert_eq!(proxy_variable(&v, false), Some(("ALL_PROXY", "http://all:1")));
        let v = vars(&[("https_proxy", "  "), ("HTTPS_PROXY", "http://upper:1")]);
        assert_eq!(proxy_variable(&v, true), Some(("HTTPS_PROXY", "http://upper:1")));
        let cgi = vars(&[("REQUEST_METHOD", "GET"), ("HTTP_PROXY", "http://attacker:1")]);
        assert_eq!(proxy_variable(&cgi, false), None);
        let v = vars(&[("NO_PROXY", "a"), ("no_proxy", "b")]);
        assert_eq!(no_proxy_variable(&v).map(|(n, r)| (n, r.as_str().to_owned())), Some(("no_proxy", "b".to_owned())));
    }
}
