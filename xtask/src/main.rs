//! `cargo xtask`: OmniCache's automation, in plain Rust, never prompting.
//!
//! - `cargo xtask ci [--slow]`: everything CI checks, in order, stopping at the first failure:
//!   fmt, clippy (default and all features, `-D warnings`), the dependency rule, nextest,
//!   doctests, rustdoc (`-D warnings`), and the loom model of the memory cache. `--slow` adds
//!   the tests marked `#[ignore = "slow"]`.
//! - `cargo xtask deps`: the architecture invariant: a library crate depends on
//!   `omnicache-core` and external crates only, never on a sibling.
//! - `cargo xtask cache-tests`: the independent HTTP caching test suite (`http-cache-tests` from
//!   npm, the suite behind cache-tests.fyi) against `omnicache proxy`; fails on any required
//!   behaviour failing. Also part of `ci`.
//! - `cargo xtask bench`: the throughput race (see docs/BENCHMARKS.md).

use std::process::{Command, ExitCode};
use std::time::Instant;

/// Packages allowed to depend on several OmniCache crates.
const LEAVES: &[&str] = &[
    "omnicache",
    "omnicache-server",
    "omnicache-cli",
    "omnicache-bench",
    "omnicache-tests",
    "xtask",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(args.iter().any(|a| a == "--slow")),
        Some("deps") => deps(),
        Some("schemathesis") => schemathesis(),
        Some("cache-tests") => cache_tests(),
        Some("bench") => run(
            "race",
            cargo(&[
                "run",
                "--release",
                "-p",
                "omnicache-bench",
                "--bin",
                "race",
                "--",
                "--secs",
                "2",
            ]),
        ),
        _ => {
            eprintln!("usage: cargo xtask ci [--slow] | deps | schemathesis | cache-tests | bench");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where cargo puts build artifacts: `cargo metadata`'s target directory, which follows
/// `CARGO_TARGET_DIR`, `build.target-dir` and the workspace's default.
fn target_dir() -> Result<std::path::PathBuf, String> {
    metadata()?["target_directory"]
        .as_str()
        .map(std::path::PathBuf::from)
        .ok_or_else(|| "cargo metadata: no target_directory".to_string())
}

/// The `omnicache` binary of a debug build.
fn omnicache_binary() -> Result<std::path::PathBuf, String> {
    Ok(target_dir()?.join("debug").join("omnicache"))
}

fn cargo(args: &[&str]) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.args(args);
    c
}

fn run(step: &str, mut cmd: Command) -> Result<(), String> {
    eprintln!("\n==> {step}: {cmd:?}");
    let started = Instant::now();
    let status = cmd.status().map_err(|e| format!("{step}: could not start: {e}"))?;
    eprintln!("<== {step}: {status} in {:.0?}", started.elapsed());
    if status.success() {
        Ok(())
    } else {
        Err(format!("step `{step}` failed ({status})"))
    }
}

fn has_nextest() -> bool {
    cargo(&["nextest", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs the external programs the tests start (Redis; Prometheus's `promtool`), where this
/// machine allows it.
fn provision() {
    let have = |prog: &str| {
        Command::new(prog)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    provision_s3s_fs();
    for (program, package) in [("redis-server", "redis-server"), ("promtool", "prometheus")] {
        if have(program) {
            continue;
        }
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
        if !root || !have("apt-get") {
            eprintln!("notice: {program} is missing and cannot be installed here; the tests that need it will fail saying so (apt-get install {package})");
            continue;
        }
        eprintln!("==> provisioning: apt-get install {package}");
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "-q", package])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        if !install() {
            let _ = Command::new("apt-get").args(["update", "-q"]).status();
            if !install() {
                eprintln!("notice: installing {package} failed; the tests that need {program} will say so");
            }
        }
    }
}

/// The folder for tools `cargo install`ed by xtask, reused across runs on one machine.
fn tools_dir() -> std::path::PathBuf {
    std::env::var_os("OMNICACHE_TOOLS").map(std::path::PathBuf::from).unwrap_or_else(|| {
        std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/omnicache-tools")
    })
}

/// Installs `s3s-fs`, the S3-compatible server the S3 tests start, unless present.
fn provision_s3s_fs() {
    let root = tools_dir();
    if root.join("bin/s3s-fs").exists() {
        return;
    }
    let on_path = Command::new("s3s-fs")
        .arg("--help")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if on_path {
        return;
    }
    eprintln!("==> provisioning: cargo install s3s-fs 0.14.1 into {}", root.display());
    let ok = cargo(&[
        "install",
        "s3s-fs",
        "--version",
        "0.14.1",
        "--locked",
        "--features",
        "binary",
        "--root",
    ])
    .arg(&root)
    .status()
    .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("notice: installing s3s-fs failed; the S3 tests will say so");
    }
}

fn ci(slow: bool) -> Result<(), String> {
    let started = Instant::now();
    provision();
    run("fmt", cargo(&["fmt", "--all", "--", "--check"]))?;
    run(
        "clippy (default features)",
        cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
    )?;
    run(
        "clippy (all features)",
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    deps()?;
    if has_nextest() {
        let mut args = vec!["nextest", "run", "--workspace", "--all-features", "--no-fail-fast"];
        if slow {
            args.extend(["--run-ignored", "all"]);
        }
        run("tests (nextest)", cargo(&args))?;
    } else {
        eprintln!("notice: cargo-nextest is not installed (cargo install cargo-nextest); using cargo test");
        let mut args =
            vec!["test", "--workspace", "--all-features", "--all-targets", "--no-fail-fast"];
        if slow {
            args.extend(["--", "--include-ignored"]);
        }
        run("tests (cargo test)", cargo(&args))?;
    }
    run(
        "#[cached] misuse fails to compile (trybuild)",
        cargo(&[
            "test",
            "-p",
            "omnicache",
            "--features",
            "macros",
            "--test",
            "cached",
            "--",
            "--ignored",
            "misuse",
        ]),
    )?;
    schemathesis()?;
    cache_tests()?;
    run("doctests", cargo(&["test", "--workspace", "--all-features", "--doc"]))?;
    let mut doc = cargo(&["doc", "--workspace", "--all-features", "--no-deps"]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    run("rustdoc", doc)?;
    let mut lm = cargo(&["test", "-p", "omnicache-tiers", "--test", "loom", "--release"]);
    lm.env("RUSTFLAGS", "--cfg loom").env("CARGO_TARGET_DIR", target_dir()?.join("loom"));
    lm.env("LOOM_MAX_PREEMPTIONS", "2");
    run("loom model of the memory cache", lm)?;
    eprintln!("\nci: all steps passed in {:.0?}", started.elapsed());
    Ok(())
}

/// The HTTP caching test suite `ci` runs, from npm.
const CACHE_TESTS: &str = "http-cache-tests@0.4.5";

/// Fetches the suite and its two runtime dependencies into the tools folder, once.
fn provision_cache_tests() -> Result<std::path::PathBuf, String> {
    let root = tools_dir().join("http-cache-tests");
    let suite = root.join("package");
    if suite.join("node_modules/node-fetch").exists()
        && suite.join("node_modules/liquidjs").exists()
    {
        return Ok(suite);
    }
    let have = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !have("node") || !have("npm") {
        eprintln!("==> provisioning: apt-get install nodejs npm");
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "-q", "nodejs", "npm"])
                .status()
                .is_ok_and(|s| s.success())
        };
        if !install() {
            let _ = Command::new("apt-get").args(["update", "-q"]).status();
            install();
        }
    }
    if !have("node") || !have("npm") {
        return Err(
            "the HTTP caching test suite needs node and npm: apt-get install nodejs npm".into()
        );
    }
    eprintln!("==> provisioning: npm pack {CACHE_TESTS} into {}", root.display());
    std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let mut pack = Command::new("npm");
    pack.args(["pack", "--silent", CACHE_TESTS]).current_dir(&root);
    let out = pack.output().map_err(|e| format!("npm pack: {e}"))?;
    let tarball = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || tarball.is_empty() {
        return Err(format!(
            "npm pack {CACHE_TESTS} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut untar = Command::new("tar");
    untar.args(["xzf", &tarball]).current_dir(&root);
    run("unpack the suite", untar)?;
    let mut deps = Command::new("npm");
    deps.args(["install", "--no-save", "--omit=dev", "--ignore-scripts", "--silent"])
        .args(["node-fetch@2", "liquidjs@9"])
        .current_dir(&suite);
    run("the suite's dependencies", deps)?;
    Ok(suite)
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn wait_for_port(port: u16, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("{what} did not start listening on {port}"));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(())
}

/// Kills a child process when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the HTTP caching test suite against `omnicache proxy` in front of the suite's own
/// origin server, and fails when a required behaviour fails or a test cannot be set up.
fn cache_tests() -> Result<(), String> {
    let suite = provision_cache_tests()?;
    run("build the proxy", cargo(&["build", "-p", "omnicache-cli", "--all-features"]))?;
    let (origin_port, proxy_port, api_port) = (free_port()?, free_port()?, free_port()?);
    let data = std::env::temp_dir().join(format!("omnicache-cache-tests-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let _origin = Child(
        Command::new("node")
            .arg("server/server.mjs")
            .current_dir(&suite)
            .env("npm_config_protocol", "http")
            .env("npm_config_port", origin_port.to_string())
            .env("npm_config_pidfile", data.with_extension("pid"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the suite's origin: {e}"))?,
    );
    let bin = omnicache_binary()?;
    let _proxy = Child(
        Command::new(&bin)
            .args(["proxy", "--upstream", &format!("http://127.0.0.1:{origin_port}")])
            .args(["--listen", &format!("127.0.0.1:{proxy_port}")])
            .args(["--api", &format!("127.0.0.1:{api_port}"), "--data"])
            .arg(&data)
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("starting omnicache proxy ({}): {e}", bin.display()))?,
    );
    wait_for_port(origin_port, "the suite's origin")?;
    wait_for_port(proxy_port, "omnicache proxy")?;
    eprintln!("\n==> HTTP caching test suite ({CACHE_TESTS}) against omnicache proxy");
    let out = Command::new("node")
        .args(["--no-warnings", "cli.mjs"])
        .current_dir(&suite)
        .env("npm_config_base", format!("http://127.0.0.1:{proxy_port}"))
        .env("npm_config_id", "")
        .env("npm_package_config_id", "")
        .output()
        .map_err(|e| format!("running the suite: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the HTTP caching suite's runner failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let results = data.with_extension("json");
    std::fs::write(&results, &out.stdout).map_err(|e| format!("{}: {e}", results.display()))?;
    let summary =
        std::env::current_dir().map_err(|e| e.to_string())?.join("xtask/cache-tests/summary.mjs");
    // The gate itself must be able to fail: judged on an empty result it must say no.
    let empty = data.with_extension("empty.json");
    std::fs::write(&empty, b"{}").map_err(|e| format!("{}: {e}", empty.display()))?;
    let vacuous = Command::new("node")
        .arg("--no-warnings")
        .arg(&summary)
        .arg(&suite)
        .arg(&empty)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("running the summary: {e}"))?;
    let _ = std::fs::remove_file(&empty);
    if vacuous.success() {
        return Err("the HTTP caching gate passed an empty result: it checks nothing".into());
    }
    let mut check = Command::new("node");
    check.arg("--no-warnings").arg(summary).arg(&suite).arg(&results);
    let verdict = run("required behaviours of a shared cache", check);
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_file(&results);
    verdict
}

/// The schemathesis version `ci` installs when `st` is missing.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// Runs schemathesis against a live `omnicache serve` and its `/openapi.json`: no 5xx, and every
/// status, content type, header and body as the document says. Bounded: 30 examples per
/// operation, 10 minutes at most.
fn schemathesis() -> Result<(), String> {
    let have_st = || {
        Command::new("st")
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !have_st() {
        eprintln!("==> provisioning: pip install {SCHEMATHESIS}");
        let _ = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", SCHEMATHESIS])
            .status();
        if !have_st() {
            return Err(format!(
                "schemathesis (`st`) is missing and could not be installed; install it with `python3 -m pip install {SCHEMATHESIS}`"
            ));
        }
    }
    run(
        "build the server for schemathesis",
        cargo(&["build", "-p", "omnicache-cli", "--all-features"]),
    )?;
    let port = free_port().map_err(|e| format!("schemathesis: {e}"))?;
    let data = std::env::temp_dir().join(format!("omnicache-schemathesis-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let bin = omnicache_binary()?;
    let mut server = Command::new(&bin)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data)
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("schemathesis: starting {}: {e}", bin.display()))?;
    if let Err(e) = wait_for_port(port, "schemathesis: the server") {
        let _ = server.kill();
        return Err(e);
    }
    let key = std::fs::read_to_string(data.join("admin.key")).unwrap_or_default();
    let mut st = Command::new("timeout");
    st.args(["600", "st", "run", &format!("http://127.0.0.1:{port}/openapi.json")])
        .args(["-H", &format!("Authorization: Bearer {}", key.trim())])
        .args(["--max-examples", "30", "--seed", "1"])
        .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"]);
    let result = run("schemathesis against /openapi.json", st);
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&data);
    result
}

/// `cargo metadata` of the workspace's own packages.
fn metadata() -> Result<serde_json::Value, String> {
    let out = cargo(&["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))
}

fn deps() -> Result<(), String> {
    eprintln!("\n==> deps: the architecture invariants");
    let violations = dependency_violations(&metadata()?);
    if violations.is_empty() {
        eprintln!(
            "<== deps: library crates depend on omnicache-core only; core on no runtime or I/O"
        );
        Ok(())
    } else {
        Err(format!(
            "the dependency invariants are broken (docs/architecture.md, 1 and 2):\n  {}",
            violations.join("\n  ")
        ))
    }
}

/// What core must not depend on: an async runtime or an I/O stack (invariant 2).
const CORE_FORBIDS: &[&str] = &[
    "tokio",
    "async-std",
    "smol",
    "futures-executor",
    "mio",
    "hyper",
    "reqwest",
    "axum",
    "rusqlite",
    "redis",
    "aws-sdk-s3",
    "rdkafka",
];

/// The dependency invariants broken in `cargo metadata`'s output: a library crate depending on
/// a sibling other than core (invariant 1), core depending on any sibling or on a runtime or
/// I/O crate (invariant 2). Leaves (binaries, the facade, benches) may depend on anything.
fn dependency_violations(meta: &serde_json::Value) -> Vec<String> {
    let mut violations = Vec::new();
    for p in meta["packages"].as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap_or_default();
        if LEAVES.contains(&name) || !name.starts_with("omnicache") {
            continue;
        }
        let core = name == "omnicache-core";
        for d in p["dependencies"].as_array().into_iter().flatten() {
            let dep = d["name"].as_str().unwrap_or_default();
            let kind = d["kind"].as_str().unwrap_or("normal");
            let sibling = dep.starts_with("omnicache") && (core || dep != "omnicache-core");
            let forbidden = core && kind != "dev" && CORE_FORBIDS.contains(&dep);
            if sibling || forbidden {
                violations.push(format!("{name} depends on {dep} ({kind})"));
            }
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shared CI caches set `CARGO_TARGET_DIR`; binaries are then found there, not in `target/`.
    /// (No other test here reads the variable, so setting it races with nothing.)
    #[test]
    fn built_binaries_are_found_where_cargo_target_dir_puts_them() {
        let elsewhere = std::env::temp_dir().join("omnicache-xtask-target");
        std::env::set_var("CARGO_TARGET_DIR", &elsewhere);
        let bin = omnicache_binary();
        std::env::remove_var("CARGO_TARGET_DIR");
        assert_eq!(bin.unwrap(), elsewhere.join("debug").join("omnicache"));
        assert!(!omnicache_binary().unwrap().starts_with(&elsewhere));
    }

    #[test]
    fn the_workspace_keeps_the_dependency_invariants() {
        let meta = metadata().expect("cargo metadata");
        assert_eq!(dependency_violations(&meta), Vec::<String>::new());
        let names: Vec<_> = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(names.contains(&"omnicache-core") && names.contains(&"omnicache-tiers"));
    }

    #[test]
    fn a_sibling_dependency_or_a_runtime_in_core_is_caught() {
        let meta = serde_json::json!({ "packages": [
            { "name": "omnicache-core", "dependencies": [
                { "name": "serde" }, { "name": "tokio" }, { "name": "omnicache-tiers" },
                { "name": "tokio", "kind": "dev" } ] },
            { "name": "omnicache-strategies", "dependencies": [
                { "name": "omnicache-core" }, { "name": "omnicache-tiers", "kind": "dev" } ] },
            { "name": "omnicache-server", "dependencies": [ { "name": "omnicache-tiers" } ] },
        ]});
        assert_eq!(
            dependency_violations(&meta),
            vec![
                "omnicache-core depends on tokio (normal)",
                "omnicache-core depends on omnicache-tiers (normal)",
                "omnicache-strategies depends on omnicache-tiers (dev)",
            ]
        );
    }
}
