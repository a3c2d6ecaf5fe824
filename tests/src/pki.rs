//! Certificates for the TLS tests, generated at test time with rcgen: a CA, a server certificate
//! for `localhost` and `127.0.0.1` signed by it, a client certificate signed by it (for servers
//! that verify clients), and a second, unrelated CA (a client that trusts it must refuse the
//! server). Nothing secret is committed; every run makes new keys.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// PEM files in one directory.
#[derive(Debug, Clone)]
pub struct TestPki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestPki {
    /// Writes a fresh set into `dir` (created if missing).
    pub fn generate(dir: &Path) -> anyhow::Result<TestPki> {
        std::fs::create_dir_all(dir)?;
        let pki = TestPki {
            dir: dir.to_owned(),
            ca: dir.join("ca.pem"),
            other_ca: dir.join("other-ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client-key.pem"),
        };
        let (ca_pem, issuer) = authority("memlock test CA")?;
        let (other_pem, _) = authority("another CA")?;
        std::fs::write(&pki.ca, ca_pem)?;
        std::fs::write(&pki.other_ca, other_pem)?;
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let (cert, key) = leaf(names, ExtendedKeyUsagePurpose::ServerAuth, &issuer)?;
        std::fs::write(&pki.server_cert, cert)?;
        std::fs::write(&pki.server_key, key)?;
        let (cert, key) = leaf(vec![], ExtendedKeyUsagePurpose::ClientAuth, &issuer)?;
        std::fs::write(&pki.client_cert, cert)?;
        std::fs::write(&pki.client_key, key)?;
        Ok(pki)
    }

    /// A fresh set in a new directory under the system's temp dir.
    pub fn temporary() -> anyhow::Result<TestPki> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("memlock-pki-{}-{n}", std::process::id()));
        TestPki::generate(&dir)
    }

    /// [`Self::memcached_args`] plus a plaintext listener on `plain_port` of the same process
    /// (`-l notls:…`), for looking at the server with a raw client.
    pub fn memcached_args_with_plain(&self, verify_clients: bool, plain_port: u16) -> Vec<String> {
        let mut args = self.memcached_args(verify_clients);
        args.extend(["-l".to_owned(), format!("notls:127.0.0.1:{plain_port}")]);
        args
    }

    /// memcached's arguments for TLS with this server certificate; `verify_clients` makes it
    /// require a client certificate signed by the CA.
    pub fn memcached_args(&self, verify_clients: bool) -> Vec<String> {
        let mut options = format!(
            "ssl_chain_cert={},ssl_key={}",
            self.server_cert.display(),
            self.server_key.display()
        );
        if verify_clients {
            options.push_str(&format!(
                ",ssl_verify_mode=2,ssl_ca_cert={}",
                self.ca.display()
            ));
        }
        vec!["-Z".into(), "-o".into(), options]
    }
}

type Authority = Issuer<'static, KeyPair>;

fn authority(name: &str) -> anyhow::Result<(String, Authority)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), Issuer::new(params, key)))
}

fn leaf(
    names: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
    issuer: &Authority,
) -> anyhow::Result<(String, String)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "memlock test");
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}
