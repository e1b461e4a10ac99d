//! Per-start secrets: the service-account signing key and the admin bearer token.

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

use crate::Error;

/// A service-account signing key pair, PEM-encoded.
pub(crate) struct SigningKey {
    /// PKCS#8 `PRIVATE KEY`: kube-apiserver signs service-account tokens with it (ES256).
    pub private_pem: String,
    /// SubjectPublicKeyInfo `PUBLIC KEY`: kube-apiserver verifies tokens with it.
    pub public_pem: String,
}

/// DER prefix of a SubjectPublicKeyInfo for an uncompressed P-256 point (id-ecPublicKey, prime256v1,
/// BIT STRING of 66 bytes), followed by the 65-byte point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// A fresh ECDSA P-256 key pair. Generated in-process: no openssl CLI needed.
pub(crate) fn service_account_key() -> Result<SigningKey, Error> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|_| Error::KeyGeneration("ring could not generate an ECDSA P-256 key".into()))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|e| Error::KeyGeneration(format!("ring rejected its own key: {e}")))?;
    let mut spki = P256_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(pair.public_key().as_ref());
    Ok(SigningKey {
        private_pem: pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref())),
        public_pem: pem::encode(&pem::Pem::new("PUBLIC KEY", spki)),
    })
}

/// A random hex string of `bytes` random bytes (bearer tokens, namespace suffixes).
pub(crate) fn random_hex(bytes: usize) -> Result<String, Error> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| Error::KeyGeneration("the system random number generator failed".into()))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
