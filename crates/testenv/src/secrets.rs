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

/// A serving certificate for `127.0.0.1` and the CA that signed it, PEM-encoded.
pub(crate) struct ServingCert {
    /// The CA certificate: what a client (kube-apiserver, through a webhook's `caBundle`) trusts.
    pub ca_pem: String,
    /// The server's certificate, IP SAN 127.0.0.1, signed by the CA.
    pub cert_pem: String,
    /// The server's private key (PKCS#8).
    pub key_pem: String,
}

/// A fresh CA and a serving certificate for `127.0.0.1` signed by it (ECDSA P-256, generated in-process).
/// istiod insists on a CA file next to its certificate, so the serving certificate is not self-signed.
pub(crate) fn loopback_serving_cert(common_name: &str) -> Result<ServingCert, Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    let err = |what: &str| {
        let what = what.to_string();
        move |e: rcgen::Error| Error::KeyGeneration(format!("{what}: {e}"))
    };
    let ca_key = KeyPair::generate().map_err(err("generating the webhook CA key"))?;
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, format!("{common_name} CA"));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca
        .self_signed(&ca_key)
        .map_err(err("signing the webhook CA certificate"))?;

    let key = KeyPair::generate().map_err(err("generating the webhook serving key"))?;
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name
        .push(DnType::CommonName, common_name.to_string());
    leaf.subject_alt_names = vec![SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let issuer = Issuer::new(ca, ca_key);
    let cert = leaf
        .signed_by(&key, &issuer)
        .map_err(err("signing the webhook serving certificate"))?;
    Ok(ServingCert {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}
