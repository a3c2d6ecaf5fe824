//! TLS for the component's connections, with rustls (ring): the component asks for it per
//! connection (`connection.protocol=memcacheds`), and the socket import wraps the network's
//! stream before handing it over, so the simulation's streams can carry TLS too.
//!
//! Trust: the `ssl_ca_file` roots, or Mozilla's (webpki-roots) when none is given. A client
//! certificate is presented when `ssl_crt_file` and `ssl_key_file` are set. Files are read at
//! each connect, so a rotated certificate takes effect without a restart; connections are pooled,
//! so that is rare. Verification is off only when the configuration says `ssl_insecure=true`,
//! and every such connection is logged as insecure.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
    StreamOwned,
};

use crate::bindings::memlock::lock::socket::{SocketError, TlsSettings};
use crate::net::NetStream;

/// Why TLS could not be set up or the handshake failed: the text the component reports
/// (`TLS_FAILED`). It names files and the server, never a secret.
pub type TlsError = String;

/// Runs the TLS handshake over `stream` as `settings` ask.
pub async fn handshake(
    stream: Box<dyn NetStream>,
    settings: &TlsSettings,
    peer: (&str, u16),
) -> Result<Box<dyn NetStream>, TlsError> {
    let (config, name) = prepare(settings, peer)?;
    let connector = TlsConnector::from(config);
    let stream = connector
        .connect(name, stream)
        .await
        .map_err(|e| describe(&e, settings))?;
    Ok(Box::new(stream))
}

/// The same handshake on a blocking stream (for [`crate::BlockingLock`]), whose reads and writes
/// end by its own deadline: running out of time is `timed-out`, like a connect that gets no
/// answer, not a TLS failure.
pub fn handshake_blocking<S: std::io::Read + std::io::Write>(
    mut stream: S,
    settings: &TlsSettings,
    peer: (&str, u16),
) -> Result<StreamOwned<ClientConnection, S>, SocketError> {
    let (config, name) = prepare(settings, peer).map_err(SocketError::Tls)?;
    let mut connection = ClientConnection::new(config, name)
        .map_err(|e| SocketError::Tls(format!("TLS setup failed: {e}")))?;
    while connection.is_handshaking() {
        connection
            .complete_io(&mut stream)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                    SocketError::TimedOut
                }
                _ => SocketError::Tls(describe(&e, settings)),
            })?;
    }
    Ok(StreamOwned::new(connection, stream))
}

/// The client configuration and the server name to verify, for a handshake with `peer`.
fn prepare(
    settings: &TlsSettings,
    peer: (&str, u16),
) -> Result<(Arc<ClientConfig>, ServerName<'static>), TlsError> {
    let config = client_config(settings)?;
    if !settings.verify {
        tracing::warn!(
            host = peer.0,
            port = peer.1,
            "TLS certificate verification is OFF (credential.ssl_insecure=true): anyone on the path can impersonate this memcached"
        );
    }
    let name = ServerName::try_from(settings.server_name.clone()).map_err(|_| {
        format!(
            "\"{}\" is not a valid TLS server name",
            settings.server_name
        )
    })?;
    Ok((Arc::new(config), name))
}

/// The rustls client configuration for `settings`, read from its files now.
pub fn client_config(settings: &TlsSettings) -> Result<ClientConfig, TlsError> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let builder = if settings.verify {
        builder.with_root_certificates(roots(settings.ca_file.as_deref())?)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    };
    match (&settings.cert_file, &settings.key_file) {
        (Some(cert_file), Some(key_file)) => {
            let chain = certificates(cert_file)?;
            let key = PrivateKeyDer::from_pem_file(key_file)
                .map_err(|e| format!("cannot read the private key in {key_file}: {e}"))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                format!("the client certificate {cert_file} and key {key_file} do not fit: {e}")
            })
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

fn roots(ca_file: Option<&str>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    let Some(ca_file) = ca_file else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(roots);
    };
    for certificate in certificates(ca_file)? {
        roots
            .add(certificate)
            .map_err(|e| format!("a certificate in {ca_file} is not a usable CA: {e}"))?;
    }
    Ok(roots)
}

fn certificates(file: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |e: &dyn std::fmt::Display| format!("cannot read the certificates in {file}: {e}");
    if !Path::new(file).is_file() {
        return Err(read(&"no such file"));
    }
    let chain = CertificateDer::pem_file_iter(file)
        .map_err(|e| read(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read(&e))?;
    if chain.is_empty() {
        return Err(read(&"no PEM certificate in it"));
    }
    Ok(chain)
}

/// A TLS error (an alert from the server, a corrupt record) inside an I/O error, in words.
pub fn failure(e: &std::io::Error) -> Option<TlsError> {
    let inner = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(match inner {
        rustls::Error::AlertReceived(alert) => format!(
            "the server ended the session with the alert {alert:?} (a server that verifies clients needs credential.ssl_crt_file and credential.ssl_key_file, with a certificate its CA signed)"
        ),
        other => other.to_string(),
    })
}

/// A handshake failure in words, with a hint for the usual causes.
fn describe(e: &std::io::Error, settings: &TlsSettings) -> TlsError {
    let inner = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(why)) => format!(
            "the server's certificate is not trusted ({why:?}) for \"{}\"{}",
            settings.server_name,
            match &settings.ca_file {
                Some(ca) => format!(" with the CA in {ca}"),
                None => " with the default roots (set credential.ssl_ca_file)".to_owned(),
            }
        ),
        Some(rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. }) => {
            format!("{e} (does the server speak TLS? memcached needs -Z)")
        }
        Some(_) => failure(e).unwrap_or_else(|| e.to_string()),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the server closed the connection during the handshake (does it speak TLS, or does it require a client certificate?)".to_owned()
        }
        None => e.to_string(),
    }
}

/// `ssl_insecure=true`: any certificate passes; signatures are still checked, so the handshake
/// itself is sound, but the server is whoever answers.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
