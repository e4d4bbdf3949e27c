//! Who may use the console, and proof that a form came from it. With a token configured, the
//! login form trades it for a session cookie (HttpOnly, SameSite=Strict) whose value is an
//! expiry and an HMAC over it keyed by the token: nothing is kept in memory, a restart keeps
//! sessions, and changing the token ends them all. Without a token (loopback only) every request
//! is let in, but only for a loopback `Host`, so a page on another site cannot reach the console
//! through a DNS name that resolves to 127.0.0.1. Every form carries a CSRF token derived from
//! the session (or, without a token, from a per-process key) that a page of another origin
//! cannot read.

use hmac::{KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The session cookie's name.
pub const COOKIE: &str = "edi_console";
/// How long a login lasts.
pub const SESSION_SECS: u64 = 12 * 3600;

/// What a request is allowed to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Logged in (or no token is configured): the CSRF token its forms carry.
    Granted { csrf: String },
    /// A token is configured and the request carries no valid session.
    LoginNeeded,
    /// No token is configured and the `Host` is not a loopback name.
    ForeignHost,
}

/// The console's keys.
pub struct Auth {
    /// The configured token; `None` on a loopback listener without one.
    token: Option<Vec<u8>>,
    /// Per-process key: signs the CSRF token when there is no session, and blinds token
    /// comparisons.
    process_key: [u8; 32],
}

impl Auth {
    pub fn new(token: Option<&str>) -> Auth {
        Auth {
            token: token.map(|t| t.as_bytes().to_vec()),
            process_key: rand::random(),
        }
    }

    /// A token is required.
    pub fn required(&self) -> bool {
        self.token.is_some()
    }

    /// Decides a request from its `Cookie` and `Host` headers at `now` (Unix seconds).
    pub fn check(&self, cookie_header: Option<&str>, host: Option<&str>, now: u64) -> Access {
        match &self.token {
            None => {
                if host.is_some_and(is_loopback_host) {
                    Access::Granted {
                        csrf: self.csrf_for("anonymous"),
                    }
                } else {
                    Access::ForeignHost
                }
            }
            Some(token) => match cookie_header.and_then(|h| cookie_value(h, COOKIE)) {
                Some(session) if session_valid(token, session, now) => Access::Granted {
                    csrf: self.csrf_for(session),
                },
                _ => Access::LoginNeeded,
            },
        }
    }

    /// The configured token equals `given` (compared in constant time).
    pub fn token_matches(&self, given: &str) -> bool {
        let Some(token) = &self.token else {
            return false;
        };
        let blind = |v: &[u8]| {
            let mut m = HmacSha256::new_from_slice(&self.process_key).expect("any key length");
            m.update(v);
            m
        };
        let want = blind(token).finalize().into_bytes();
        blind(given.trim().as_bytes()).verify_slice(&want).is_ok()
    }

    /// A new session cookie value valid until `now + SESSION_SECS`.
    pub fn new_session(&self, now: u64) -> Option<String> {
        let token = self.token.as_ref()?;
        let expires = now + SESSION_SECS;
        Some(format!(
            "{expires}.{}",
            hex(&sign(token, &expires.to_string()))
        ))
    }

    /// The `csrf` field a form posted holds what this session's forms carry.
    pub fn csrf_valid(&self, access: &Access, given: &str) -> bool {
        match access {
            Access::Granted { csrf } => same(csrf, given),
            _ => false,
        }
    }

    fn csrf_for(&self, session: &str) -> String {
        let key = self.token.as_deref().unwrap_or(&self.process_key);
        hex(&sign(key, &format!("csrf:{session}")))
    }
}

fn sign(key: &[u8], what: &str) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("any key length");
    m.update(what.as_bytes());
    m.finalize().into_bytes().to_vec()
}

fn session_valid(token: &[u8], session: &str, now: u64) -> bool {
    let Some((expires, mac)) = session.split_once('.') else {
        return false;
    };
    let Ok(at) = expires.parse::<u64>() else {
        return false;
    };
    if at <= now || at > now + SESSION_SECS {
        return false;
    }
    let Some(mac) = unhex(mac) else {
        return false;
    };
    let mut m = HmacSha256::new_from_slice(token).expect("any key length");
    m.update(expires.as_bytes());
    m.verify_slice(&mac).is_ok()
}

/// `a == b`, in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// `127.0.0.1`, `[::1]` or `localhost`, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(h, _)| h)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn a_session_is_granted_until_it_expires_and_only_under_its_token() {
        let auth = Auth::new(Some("s3cret-token"));
        assert!(auth.required());
        let session = auth.new_session(NOW).unwrap();
        let cookie = format!("other=1; {COOKIE}={session}");
        let Access::Granted { csrf } = auth.check(Some(&cookie), None, NOW + 10) else {
            panic!("a fresh session is let in");
        };
        assert!(auth.csrf_valid(&auth.check(Some(&cookie), None, NOW), &csrf));
        assert!(!auth.csrf_valid(&auth.check(Some(&cookie), None, NOW), "00"));
        assert_eq!(
            auth.check(Some(&cookie), None, NOW + SESSION_SECS),
            Access::LoginNeeded
        );
        assert_eq!(
            auth.check(None, Some("127.0.0.1"), NOW),
            Access::LoginNeeded
        );
        let other = Auth::new(Some("another-token"));
        assert_eq!(other.check(Some(&cookie), None, NOW), Access::LoginNeeded);
        // A forged expiry far in the future, or a tampered MAC, is refused.
        let (_, mac) = session.split_once('.').unwrap();
        let forged = format!("{COOKIE}={}.{mac}", NOW + 10 * SESSION_SECS);
        assert_eq!(auth.check(Some(&forged), None, NOW), Access::LoginNeeded);
        let tampered = format!("{COOKIE}={}0", &session[..session.len() - 1]);
        assert_eq!(auth.check(Some(&tampered), None, NOW), Access::LoginNeeded);
    }

    #[test]
    fn the_token_compares_exactly() {
        let auth = Auth::new(Some("s3cret-token"));
        assert!(auth.token_matches("s3cret-token"));
        assert!(auth.token_matches(" s3cret-token\n"));
        assert!(!auth.token_matches("s3cret-toke"));
        assert!(!auth.token_matches(""));
        assert!(!Auth::new(None).token_matches(""));
    }

    #[test]
    fn without_a_token_only_loopback_hosts_are_served() {
        let auth = Auth::new(None);
        for host in [
            "127.0.0.1:8081",
            "localhost:8081",
            "[::1]:8081",
            "LOCALHOST",
        ] {
            assert!(
                matches!(auth.check(None, Some(host), NOW), Access::Granted { .. }),
                "{host}"
            );
        }
        for host in [
            "evil.example:8081",
            "10.0.0.5:8081",
            "127.0.0.1.evil.example",
        ] {
            assert_eq!(
                auth.check(None, Some(host), NOW),
                Access::ForeignHost,
                "{host}"
            );
        }
        assert_eq!(auth.check(None, None, NOW), Access::ForeignHost);
    }
}
