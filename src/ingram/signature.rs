//! Ingram webhook signatures: `x-hub-signature` is the standard Base64 (padded) HMAC-SHA512 of the
//! event id string, keyed with the shared webhook secret. Used by the webhook intake to verify and by
//! the emulator (`sim send-webhook`) to sign. Verification is constant-time and accepts any of
//! several secrets, so a rotated key and the old one both verify during the switch.

use base64::Engine as _;
use hmac::{KeyInit, Mac};

type HmacSha512 = hmac::Hmac<sha2::Sha512>;

/// The `x-hub-signature` value for `event_id` under `secret`.
pub fn sign(secret: &[u8], event_id: &str) -> String {
    let mut mac = HmacSha512::new_from_slice(secret).expect("hmac accepts keys of any length");
    mac.update(event_id.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// True when `signature` is the valid signature of `event_id` under any of `secrets`.
/// Malformed Base64 never verifies. Every secret is tried, so timing does not reveal which matched.
pub fn verify<S: AsRef<[u8]>>(secrets: &[S], event_id: &str, signature: &str) -> bool {
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let mut ok = false;
    for secret in secrets {
        let mut mac =
            HmacSha512::new_from_slice(secret.as_ref()).expect("hmac accepts keys of any length");
        mac.update(event_id.as_bytes());
        ok |= mac.verify_slice(&given).is_ok();
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test vectors from ingram-vendor-api.md §3.
    const VECTORS: [(&str, &str, &str); 2] = [
        ("secret", "N01CIB9VVFYKR9J6ZW", "Dd91W54Cdm6jg1kHFoPVuy1uS/ti74xcOpwmRIlfkgpNfTBy/ZzpQGkh6QcoIVO+G3+Lt7XVL7Y+Z7BWuq/1SQ=="),
        ("my-webhook-secret", "AH7ESSIWSIO22Y77DD", "79PP9TDV930zN1gMgZ20CHtO4n8Lx1hv37Qg8Ij/QE/bEntb4eDpfh3R4MMsJdAYn5+66q/yHxTyiJ4+Mkwyng=="),
    ];

    #[test]
    fn spec_vectors_sign_and_verify() {
        for (secret, event, sig) in VECTORS {
            assert_eq!(sign(secret.as_bytes(), event), sig);
            assert!(verify(&[secret], event, sig));
        }
    }

    #[test]
    fn wrong_secret_event_or_garbage_fails() {
        let (secret, event, sig) = VECTORS[0];
        assert!(!verify(&["other"], event, sig));
        assert!(!verify(&[secret], "N01CIB9VVFYKR9J6ZX", sig));
        assert!(!verify(&[secret], event, "not base64!!"));
        assert!(!verify(&[secret], event, ""));
        let no_secrets: [&str; 0] = [];
        assert!(!verify(&no_secrets, event, sig));
    }

    #[test]
    fn rotated_secret_verifies_with_either() {
        let (secret, event, sig) = VECTORS[0];
        assert!(verify(&["new-secret", secret], event, sig));
    }
}
