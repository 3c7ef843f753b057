//! Shared by the end-to-end tests: start the real binary, talk raw HTTP to it.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Server {
    pub child: Child,
    pub addr: String,
    pub key: Option<String>,
}

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_omnicache"))
}

pub fn serve(data: &Path) -> Server {
    serve_with(data, &[], &[])
}

/// Starts `omnicache serve --listen 127.0.0.1:0 --data DATA ARGS` with `envs`.
pub fn serve_with(data: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
    serve_logging(data, args, envs, None)
}

/// As [`serve_with`], and with `log` everything the server prints (stdout and stderr) goes to
/// that file too, for tests that read the whole log.
pub fn serve_logging(
    data: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
    log: Option<&Path>,
) -> Server {
    let mut cmd = bin();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"]).arg(data).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut out = log.map(|p| std::fs::File::create(p).expect("the log file"));
    let stderr = match &out {
        Some(f) => Stdio::from(f.try_clone().unwrap()),
        None => Stdio::inherit(),
    };
    let mut child =
        cmd.stdout(Stdio::piped()).stderr(stderr).spawn().expect("the omnicache binary");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = None;
    let mut key = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(f) = out.as_mut() {
            writeln!(f, "{line}").unwrap();
        }
        if let Some(a) = line.strip_prefix("OmniCache listening on ") {
            addr = Some(a.split("://").nth(1).unwrap_or(a).to_string());
        }
        if let Some(k) = line.trim().strip_prefix("admin key: ") {
            assert!(!k.starts_with("oc_"), "the key is printed only on a terminal: {line}");
            if let Some(rest) = k.strip_prefix("created in ") {
                let file = rest.split(" (").next().unwrap();
                key = Some(std::fs::read_to_string(file).unwrap().trim().to_string());
            }
        }
        if line.contains("Authorization: Bearer") {
            break;
        }
    }
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if let Some(f) = out.as_mut() {
                let _ = writeln!(f, "{line}");
            }
        }
    });
    Server { child, addr: addr.expect("the server printed its address"), key }
}

impl Server {
    pub fn stop(mut self) -> std::process::ExitStatus {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn error_code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_string()
    }
}

pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP response");
    let headers = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = headers.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if headers.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Reply { status, headers, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else { return out };
        let n =
            usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap_or(0);
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[nl + 2 + n + 2..];
    }
}

/// Every byte of the files directly under `dir`.
pub fn raw(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            all.extend(std::fs::read(&p).unwrap());
        }
    }
    all
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
