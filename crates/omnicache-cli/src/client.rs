//! The HTTP client behind the admin commands: one request helper, errors that say what to do,
//! and exit codes (1: the operation failed; 2: the request or the arguments are wrong).

use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

/// A failed command: a message for stderr and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
    /// The server's error code (`cache_not_found`, ...), when it answered with one.
    pub(crate) kind: Option<String>,
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure { code: 2, message: message.into(), kind: None }
    }

    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Failure { code: 1, message: message.into(), kind: None }
    }
}

pub(crate) type Outcome<T> = Result<T, Failure>;

/// Where the server is and how to talk to it.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Connection {
    /// The server's URL.
    #[arg(long, global = true, env = "OMNICACHE_SERVER", default_value = "http://127.0.0.1:7070")]
    pub(crate) server: String,
    /// The API key. Default: the `admin.key` file in ./omnicache-data, if readable.
    #[arg(long, global = true, env = "OMNICACHE_API_KEY", hide_env_values = true)]
    pub(crate) api_key: Option<String>,
    /// A PEM CA certificate to trust for an https server with a private CA.
    #[arg(long, global = true, env = "OMNICACHE_CA_CERT")]
    pub(crate) ca_cert: Option<PathBuf>,
    /// Print JSON instead of tables, for scripts.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

pub(crate) struct Client {
    agent: ureq::Agent,
    base: String,
    key: Option<String>,
    pub(crate) json: bool,
}

/// A response: status and body.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(&self) -> Outcome<Value> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Failure::failed(format!("the server sent something that is not JSON ({e})"))
        })
    }
}

/// Percent-encodes one path segment.
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    pub(crate) fn new(c: &Connection) -> Outcome<Client> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = &c.ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| Failure::usage(format!("--ca-cert {}: {e}", path.display())))?;
            let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(Failure::usage(format!(
                    "--ca-cert {}: no PEM certificate in the file",
                    path.display()
                )));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .tls_config(tls.build())
            .build()
            .into();
        let key = c.api_key.clone().or_else(|| {
            std::fs::read_to_string("omnicache-data/admin.key").ok().map(|k| k.trim().to_string())
        });
        Ok(Client { agent, base: c.server.trim_end_matches('/').to_string(), key, json: c.json })
    }

    fn auth(&self) -> Option<String> {
        self.key.as_ref().map(|k| format!("Bearer {k}"))
    }

    fn transport_error(&self, e: ureq::Error) -> Failure {
        Failure::failed(format!(
            "cannot reach the server at {} ({e}); is `omnicache serve` running? Set --server or OMNICACHE_SERVER",
            self.base
        ))
    }

    /// Sends a request; `body` is `(content type, reader)`.
    pub(crate) fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Box<dyn Read + '_>)>,
    ) -> Outcome<ureq::http::Response<ureq::Body>> {
        let url = format!("{}{path}", self.base);
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(a) = self.auth() {
            req = req.header("Authorization", a);
        }
        let result = match body {
            Some((ct, mut reader)) => {
                let req = req
                    .header("Content-Type", ct)
                    .body(())
                    .map_err(|e| Failure::usage(format!("{url}: not a valid request ({e})")))?;
                let (parts, ()) = req.into_parts();
                let req = ureq::http::Request::from_parts(
                    parts,
                    ureq::SendBody::from_reader(&mut reader),
                );
                self.agent.run(req)
            }
            None => {
                let req = req
                    .body(())
                    .map_err(|e| Failure::usage(format!("{url}: not a valid request ({e})")))?;
                self.agent.run(req)
            }
        };
        result.map_err(|e| self.transport_error(e))
    }

    /// Sends and reads the whole reply; an error status becomes a [`Failure`].
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Box<dyn Read + '_>)>,
    ) -> Outcome<Reply> {
        let resp = self.send(method, path, body)?;
        let reply = read_reply(resp)?;
        if reply.status >= 400 {
            return Err(self.failure(&reply));
        }
        Ok(reply)
    }

    pub(crate) fn call_json(&self, method: &str, path: &str, body: &Value) -> Outcome<Reply> {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        self.call(method, path, Some(("application/json", Box::new(bytes.as_slice()))))
    }

    /// The failure for an error reply, with a hint of what to do.
    pub(crate) fn failure(&self, reply: &Reply) -> Failure {
        let parsed: Option<Value> = serde_json::from_slice(&reply.body).ok();
        let (code, message) = match &parsed {
            Some(v) => (
                v["error"]["code"].as_str().unwrap_or("error").to_string(),
                v["error"]["message"].as_str().unwrap_or("").to_string(),
            ),
            None => ("error".into(), String::from_utf8_lossy(&reply.body).trim().to_string()),
        };
        let hint = match reply.status {
            401 if self.key.is_none() => {
                "; pass --api-key or set OMNICACHE_API_KEY (the admin key is in the server's data directory, admin.key)"
            }
            401 => "; check --api-key / OMNICACHE_API_KEY",
            403 => "; use a key with that scope or for that cache",
            _ => "",
        };
        let exit = match reply.status {
            400 | 413 | 414 => 2,
            _ => 1,
        };
        let message = format!("{message} ({} {code}){hint}", reply.status);
        Failure { code: exit, message, kind: Some(code) }
    }
}

pub(crate) fn read_reply(resp: ureq::http::Response<ureq::Body>) -> Outcome<Reply> {
    let status = resp.status().as_u16();
    let content_type =
        resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = resp
        .into_body()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .map_err(|e| Failure::failed(format!("reading the reply: {e}")))?;
    Ok(Reply { status, content_type, body })
}

/// Prints rows as an aligned table under `header`.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r.clone());
    }
}

/// A JSON value as a table cell.
pub(crate) fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}
