//! Process-wide network set-up shared by every HTTP and S3 client.

/// Installs rustls' ring crypto provider as the process default, once. reqwest and
/// object_store are built without a provider of their own (so that aws-lc-sys, a slow C build,
/// stays out), and need one installed before the first TLS connection.
pub fn ensure_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An error means another provider was installed first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
