//! Password hashing for accounts, and the SHA-256 used to store API keys and certificates.
//!
//! Passwords are hashed with Argon2id (the `argon2` crate's defaults, which follow the OWASP
//! recommendation: 19 MiB, 2 iterations, 1 lane) under a random 16-byte salt from the operating
//! system, and kept as PHC strings, so that the parameters travel with the hash and can be raised
//! later without invalidating stored accounts. Verification takes the parameters from the string.
//!
//! This hash is slow on purpose (tens of milliseconds): callers must not run it on every request
//! (see the TAXII crate's credential cache). API keys are long random values, so a single SHA-256
//! is enough for them and costs a microsecond.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};

/// Hashes a password with Argon2id and a fresh random salt; returns a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|e| StoreError::Invalid(format!("no randomness for a password salt: {e}")))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| StoreError::Invalid(format!("password salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| StoreError::Invalid(format!("password hash: {e}")))
}

/// Whether `password` matches the PHC string `phc`. A malformed `phc` never matches. The
/// comparison of the derived hash is constant-time (done by `argon2`).
pub fn verify_password(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// SHA-256 of `bytes`: how API keys and client certificates (DER) are looked up.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password(&phc, "correct horse"));
        assert!(!verify_password(&phc, "correct horsE"));
        assert!(!verify_password("not a phc string", "correct horse"));
        assert_ne!(phc, hash_password("correct horse").unwrap(), "salts differ");
    }

    #[test]
    fn sha256_known_value() {
        assert_eq!(
            hex::encode(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
