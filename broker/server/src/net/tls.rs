//! TLS for SSL and SASL_SSL listeners (rustls, ring provider), from PEM files that are
//! re-read when they change, so a renewed certificate (cert-manager rotating a Secret) is
//! served to new connections without a restart. Connections already open keep theirs.
//!
//! With `--tls-client-ca`, SSL listeners require a client certificate chaining to it, and
//! the certificate's subject is the connection's principal (`User:CN=...`, Kafka's default
//! SSL principal); SASL_SSL listeners check a certificate if one is offered, but the
//! principal comes from SASL.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use ironlog_security::KafkaPrincipal;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::security::TlsFiles;

/// Why the TLS files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} holds no certificate")]
    NoCertificate { path: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The acceptors for the current files.
struct Loaded {
    /// Client certificate required (SSL listeners with a client CA).
    required: TlsAcceptor,
    /// Client certificate checked if offered (SASL_SSL listeners; or no client CA at all).
    optional: TlsAcceptor,
    /// What the files looked like when read: reloaded when this changes.
    stamp: Vec<Option<(SystemTime, u64)>>,
}

/// The TLS acceptors of a broker, reloaded from their files.
pub struct Tls {
    files: TlsFiles,
    loaded: RwLock<Arc<Loaded>>,
}

impl Tls {
    /// Reads the files now: a broker with unusable TLS files does not start.
    pub fn load(files: TlsFiles) -> Result<Tls, TlsError> {
        let loaded = load(&files)?;
        Ok(Tls {
            files,
            loaded: RwLock::new(Arc::new(loaded)),
        })
    }

    /// The acceptor for a listener: with `require_client_cert`, clients without a trusted
    /// certificate are refused (only when a client CA is configured).
    pub fn acceptor(&self, require_client_cert: bool) -> TlsAcceptor {
        let loaded = self
            .loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if require_client_cert {
            loaded.required.clone()
        } else {
            loaded.optional.clone()
        }
    }

    /// Whether client certificates are verified at all.
    pub fn mutual(&self) -> bool {
        self.files.client_ca.is_some()
    }

    /// Re-reads the files if they changed since they were read. A change that doesn't load
    /// (a half-written file, a key that doesn't match) keeps the previous certificate, and
    /// is retried at the next check. Returns whether a new certificate is in use.
    pub fn reload_if_changed(&self) -> bool {
        let current = self
            .loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if stamp(&self.files) == current.stamp {
            return false;
        }
        match load(&self.files) {
            Ok(loaded) => {
                *self.loaded.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded);
                tracing::info!(cert = %self.files.cert.display(), "TLS files changed: new connections get the new certificate");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS files changed but cannot be used; keeping the previous certificate");
                false
            }
        }
    }

    /// Checks the files every `every` until `shutdown`.
    pub fn spawn_reloader(
        self: &Arc<Self>,
        every: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let tls = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = crate::broker::stopped(&mut shutdown) => return,
                }
                tls.reload_if_changed();
            }
        })
    }
}

/// The principal of a TLS connection's verified client certificate, if it sent one.
pub fn client_principal(conn: &rustls::ServerConnection) -> Option<KafkaPrincipal> {
    let cert = conn.peer_certificates()?.first()?;
    match ironlog_security::principal::from_certificate_der(cert.as_ref()) {
        Ok(principal) => Some(principal),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the client certificate's subject");
            None
        }
    }
}

fn stamp(files: &TlsFiles) -> Vec<Option<(SystemTime, u64)>> {
    [
        Some(&files.cert),
        Some(&files.key),
        files.client_ca.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|p| {
        std::fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    })
    .collect()
}

fn load(files: &TlsFiles) -> Result<Loaded, TlsError> {
    // Stamp first: a file changing while it is read is read again at the next check.
    let stamp = stamp(files);
    let certs = read_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::Read {
        path: files.key.display().to_string(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = || {
        ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))
    };
    let config = |verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>| {
        let b = builder()?;
        let b = match verifier {
            Some(v) => b.with_client_cert_verifier(v),
            None => b.with_no_client_auth(),
        };
        b.with_single_cert(certs.clone(), key.clone_key())
            .map(|c| TlsAcceptor::from(Arc::new(c)))
            .map_err(|e| TlsError::Config(format!("certificate and key: {e}")))
    };
    let (required, optional) = match &files.client_ca {
        None => {
            let acceptor = config(None)?;
            (acceptor.clone(), acceptor)
        }
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| TlsError::Config(format!("{}: {e}", ca.display())))?;
            }
            let roots = Arc::new(roots);
            let required =
                WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                    .build()
                    .map_err(|e| TlsError::Config(e.to_string()))?;
            let optional = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            (config(Some(required))?, config(Some(optional))?)
        }
    };
    Ok(Loaded {
        required,
        optional,
        stamp,
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_error = |reason: String| TlsError::Read {
        path: path.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| read_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}
