//! A `redis-server` speaking TLS only (`--port 0 --tls-port`), with certificates made here
//! (rcgen): a private CA, the server's certificate, and a client certificate the server
//! requires (`--tls-auth-clients yes`). Included next to `support` by the tests that need it
//! (webhook-redis's `tls`, webhook-cli's `redis`).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use webhook_redis::RedisTls;

use crate::support::free_port;

/// A self-signed CA named `name`.
pub(crate) fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate and its key (PEM) issued by `issuer` for `names`.
pub(crate) fn issue(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    names: &[&str],
    client: bool,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    if client {
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    }
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A `redis-server` speaking TLS only, requiring a client certificate from `ca`.
pub(crate) struct TlsRedis {
    pub(crate) port: u16,
    pub(crate) dir: PathBuf,
    child: Child,
    /// The CA that issued the server's and the client's certificates (PEM).
    pub(crate) ca_pem: String,
    /// The client certificate and key (PEM).
    pub(crate) client: (String, String),
}

impl TlsRedis {
    /// `None` when `redis-server` is missing (a failure under `CI=true`).
    pub(crate) fn start() -> Option<Self> {
        // Redis's TLS is a build option: the `redis-server` on PATH (Debian's is built with
        // it), not the versions CI fetches from PyPI wheels (6.2's is built without), unless
        // `WEBHOOK_TEST_REDIS_TLS_SERVER` names another.
        let bin = std::env::var("WEBHOOK_TEST_REDIS_TLS_SERVER")
            .unwrap_or_else(|_| "redis-server".to_owned());
        if !crate::support::runnable(&bin) {
            return None;
        }
        let ca = ca("webhook test CA");
        let server = issue(&ca, &["127.0.0.1", "localhost"], false);
        let client = issue(&ca, &["worker"], true);
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("webhook-redis-tls-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p.to_str().unwrap().to_owned()
        };
        let (ca_file, cert_file, key_file) = (
            file("ca.pem", &ca.pem()),
            file("server.pem", &server.0),
            file("server.key", &server.1),
        );
        let child = Command::new(&bin)
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--dir",
                dir.to_str().unwrap(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--tls-cert-file", &cert_file, "--tls-key-file", &key_file])
            .args(["--tls-ca-cert-file", &ca_file, "--tls-auth-clients", "yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let s = Self {
            port,
            dir,
            child,
            ca_pem: ca.pem(),
            client,
        };
        // Up once the TLS port accepts connections.
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis (TLS) did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(s)
    }

    pub(crate) fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }

    /// The CA and the client certificate.
    pub(crate) fn tls(&self) -> RedisTls {
        RedisTls::new()
            .root_ca_pem(self.ca_pem.clone())
            .client_cert_pem(self.client.0.clone(), self.client.1.clone())
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
