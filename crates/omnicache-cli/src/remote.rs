//! Commands that drive a running server over its REST API: caches, entries, tiers and keys.

use super::*;

pub(super) fn remote(command: Command) -> Outcome<()> {
    match command {
        Command::Cache(c) => cache_command(c),
        Command::Entry(e) => entry_command(e),
        Command::Key(k) => key_command(k),
        Command::Tiers(t) => tiers_command(t),
        Command::Analytics(AnalyticsCommand::Top { name, n, conn }) => {
            let client = Client::new(&conn)?;
            let v = client
                .call("GET", &format!("/caches/{}/top?n={n}", segment(&name)), None)?
                .json()?;
            print_json_or(&client, &v, |v| {
                let rows: Vec<Vec<String>> = v["keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|k| vec![cell(&k["key"]), cell(&k["count"]), cell(&k["error"])])
                    .collect();
                client::table(&["key", "reads", "over by at most"], &rows);
            });
            Ok(())
        }
        Command::Warm { file, cache, format, ttl, conn, .. } => {
            let format = warm_format(&file, format.as_deref())?;
            check_ttl(ttl)?;
            let client = Client::new(&conn)?;
            let fmt = match format {
                omnicache_tiers::warm::WarmFormat::Json => "json",
                omnicache_tiers::warm::WarmFormat::Jsonl => "jsonl",
                omnicache_tiers::warm::WarmFormat::Csv => "csv",
            };
            let mut path = format!("/caches/{}/warm?format={fmt}", segment(&cache));
            if let Some(t) = ttl {
                path.push_str(&format!("&ttl={t}"));
            }
            upload(&client, &path, &file, "application/octet-stream", &cache, "warmed")
        }
        Command::Import { file, cache, conn } => {
            let client = Client::new(&conn)?;
            let path = format!("/caches/{}/import", segment(&cache));
            upload(&client, &path, &file, "application/x-ndjson", &cache, "imported")
        }
        Command::Export { cache, prefix, output, conn } => {
            let client = Client::new(&conn)?;
            let path = format!("/caches/{}/export?prefix={}", segment(&cache), segment(&prefix));
            let lines = download(&client, &path, output.as_deref())?;
            if let Some(p) = output {
                eprintln!("exported {lines} entries of cache {cache:?} to {}", p.display());
            }
            Ok(())
        }
        Command::Serve { .. }
        | Command::Sim { .. }
        | Command::Proxy { .. }
        | Command::Security(_) => Err(Failure::failed("internal: not a client command")),
    }
}

/// `name` if the server knows it as a policy (in lower case), else a usage error listing them.
pub(super) fn known_policy(name: &str) -> Outcome<String> {
    let lower = name.to_ascii_lowercase();
    if omnicache_strategies::NAMES.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(Failure::usage(format!(
            "--policy {name:?}: unknown policy; expected one of {}",
            omnicache_strategies::NAMES.join(", ")
        )))
    }
}

pub(super) fn tiers_command(t: TiersCommand) -> Outcome<()> {
    match t {
        TiersCommand::Cost(Named { name, conn }) => {
            let client = Client::new(&conn)?;
            let v =
                client.call("GET", &format!("/caches/{}/cost", segment(&name)), None)?.json()?;
            print_json_or(&client, &v, |v| {
                let money = |x: &Value| format!("${:.4}", x.as_f64().unwrap_or(0.0));
                let rows: Vec<Vec<String>> = v["tiers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        vec![
                            cell(&t["tier"]),
                            cell(&t["entries"]),
                            cell(&t["bytes"]),
                            format!("${}/GB-mo", cell(&t["usd_per_gb_month"])),
                            money(&t["storage_usd_month"]),
                            money(&t["requests_usd_month"]),
                        ]
                    })
                    .collect();
                client::table(
                    &["tier", "entries", "bytes", "price", "storage/month", "requests/month"],
                    &rows,
                );
                println!("total: {} a month", money(&v["total_usd_month"]));
            });
        }
    }
    Ok(())
}

pub(super) fn print_json_or(client: &Client, v: &Value, human: impl FnOnce(&Value)) {
    if client.json {
        println!("{v}");
    } else {
        human(v);
    }
}

pub(super) fn cache_command(c: CacheCommand) -> Outcome<()> {
    match c {
        CacheCommand::Create { name, policy, capacity, max_bytes, ttl, conn } => {
            let client = Client::new(&conn)?;
            let mut body = json!({ "name": name });
            if let Some(p) = policy {
                body["policy"] = json!(known_policy(&p)?);
            }
            if let Some(c) = capacity {
                body["l1_capacity"] = json!(c);
            }
            if let Some(b) = max_bytes {
                body["l1_max_bytes"] = json!(b);
            }
            if let Some(t) = ttl {
                body["default_ttl_secs"] = json!(t);
            }
            let v = client.call_json("POST", "/caches", &body)?.json()?;
            print_json_or(&client, &v, |_| println!("created cache {name:?}"));
        }
        CacheCommand::List(ConnOnly { conn }) => {
            let client = Client::new(&conn)?;
            let v = client.call("GET", "/caches", None)?.json()?;
            print_json_or(&client, &v, |v| {
                let rows: Vec<Vec<String>> = v["caches"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| vec![cell(&c["name"]), cell(&c["policy"]), cell(&c["l1_entries"])])
                    .collect();
                table(&["NAME", "POLICY", "ENTRIES IN MEMORY"], &rows);
            });
        }
        CacheCommand::Info(Named { name, conn }) => {
            let client = Client::new(&conn)?;
            let v = client.call("GET", &format!("/caches/{}", segment(&name)), None)?.json()?;
            print_json_or(&client, &v, |v| {
                println!("cache:    {}", cell(&v["name"]));
                println!("policy:   {}", cell(&v["policy"]));
                println!("memory:   {} entries", cell(&v["l1_entries"]));
                println!("spec:     {}", v["spec"]);
                let rows: Vec<Vec<String>> = v["tiers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| vec![cell(&t["tier"]), cell(&t["health"]), cell(&t["breaker"])])
                    .collect();
                table(&["TIER", "HEALTH", "BREAKER"], &rows);
            });
        }
        CacheCommand::SetPolicy { name, policy, conn } => {
            let client = Client::new(&conn)?;
            let v = client
                .call_json(
                    "PATCH",
                    &format!("/caches/{}", segment(&name)),
                    &json!({ "policy": known_policy(&policy)? }),
                )?
                .json()?;
            print_json_or(&client, &v, |v| {
                println!(
                    "cache {name:?} now evicts by {}, {} entries kept",
                    cell(&v["policy"]),
                    cell(&v["l1_entries"])
                )
            });
        }
        CacheCommand::Delete(Named { name, conn }) => {
            let client = Client::new(&conn)?;
            client.call("DELETE", &format!("/caches/{}", segment(&name)), None)?;
            if !client.json {
                println!("deleted cache {name:?}");
            }
        }
        CacheCommand::Stats(Named { name, conn }) => {
            let client = Client::new(&conn)?;
            let v =
                client.call("GET", &format!("/caches/{}/stats", segment(&name)), None)?.json()?;
            print_json_or(&client, &v, |v| {
                println!("cache:      {} ({})", cell(&v["name"]), cell(&v["policy"]));
                println!(
                    "memory:     {} entries, weighted size {}",
                    cell(&v["l1_entries"]),
                    cell(&v["l1_weighted_size"])
                );
                println!(
                    "lookups:    {} hits, {} misses, hit ratio {:.4}",
                    cell(&v["hits"]),
                    cell(&v["misses"]),
                    v["hit_ratio"].as_f64().unwrap_or(0.0)
                );
                println!(
                    "promotions: {}, demotions: {}",
                    cell(&v["promotions"]),
                    cell(&v["demotions"])
                );
                if let Some(r) = v["removals"].as_object() {
                    let parts: Vec<String> = r.iter().map(|(k, n)| format!("{k} {n}")).collect();
                    println!("removals:   {}", parts.join(", "));
                }
                let rows: Vec<Vec<String>> = v["tiers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        ["tier", "health", "breaker", "hits", "misses", "errors", "writes"]
                            .iter()
                            .map(|k| cell(&t[*k]))
                            .collect()
                    })
                    .collect();
                table(&["TIER", "HEALTH", "BREAKER", "HITS", "MISSES", "ERRORS", "WRITES"], &rows);
            });
        }
        CacheCommand::Clear(Named { name, conn }) => {
            let client = Client::new(&conn)?;
            let v =
                client.call("POST", &format!("/caches/{}/clear", segment(&name)), None)?.json()?;
            print_json_or(&client, &v, |v| {
                println!("cleared cache {name:?}: {} entries removed", cell(&v["removed"]))
            });
        }
    }
    Ok(())
}

pub(super) fn entry_path(cache: &str, key: &str) -> String {
    format!("/caches/{}/entries/{}", segment(cache), segment(key))
}

pub(super) fn entry_command(e: EntryCommand) -> Outcome<()> {
    match e {
        EntryCommand::Get { cache, key, output, conn } => {
            let client = Client::new(&conn)?;
            let reply = client.call("GET", &entry_path(&cache, &key), None)?;
            if client.json {
                let v = match std::str::from_utf8(&reply.body) {
                    Ok(s) => json!({ "key": key, "value": s, "content_type": reply.content_type }),
                    Err(_) => json!({
                        "key": key,
                        "value_hex": reply.body.iter().map(|b| format!("{b:02x}")).collect::<String>(),
                        "content_type": reply.content_type,
                    }),
                };
                println!("{v}");
                return Ok(());
            }
            match output {
                Some(p) => std::fs::write(&p, &reply.body)
                    .map_err(|e| Failure::usage(format!("{}: {e}", p.display())))?,
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&reply.body)
                        .and_then(|()| out.flush())
                        .map_err(|e| Failure::failed(format!("writing stdout: {e}")))?;
                }
            }
        }
        EntryCommand::Set { cache, key, value, file, ttl, tags, content_type, conn } => {
            check_ttl(ttl)?;
            let client = Client::new(&conn)?;
            let bytes = match (value, file) {
                (Some(v), None) => v.into_bytes(),
                (None, Some(f)) => std::fs::read(&f)
                    .map_err(|e| Failure::usage(format!("{}: {e}", f.display())))?,
                (None, None) => {
                    let mut b = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut b)
                        .map_err(|e| Failure::usage(format!("reading stdin: {e}")))?;
                    b
                }
                (Some(_), Some(_)) => {
                    return Err(Failure::usage("give the value or --file, not both"))
                }
            };
            let mut path = entry_path(&cache, &key);
            let mut query = Vec::new();
            if let Some(t) = ttl {
                query.push(format!("ttl={t}"));
            }
            if let Some(t) = tags {
                query.push(format!("tags={}", segment(&t)));
            }
            if !query.is_empty() {
                path = format!("{path}?{}", query.join("&"));
            }
            client.call("PUT", &path, Some((&content_type, Box::new(bytes.as_slice()))))?;
            let v = json!({"cache": cache, "key": key, "stored": true, "bytes": bytes.len()});
            print_json_or(&client, &v, |_| {
                println!("stored {key:?} in cache {cache:?} ({} bytes)", bytes.len());
            });
        }
        EntryCommand::Complain { cache, key, conn } => {
            let client = Client::new(&conn)?;
            let path = format!("{}/complaints", entry_path(&cache, &key));
            let v = client.call("POST", &path, None)?.json()?;
            print_json_or(&client, &v, |v| {
                if v["invalidated"] == true {
                    println!("{key:?} invalidated after {} complaints", v["complaints"]);
                } else {
                    println!("{key:?}: {} complaint(s) so far", v["complaints"]);
                }
            });
        }
        EntryCommand::Delete { cache, key, conn } => {
            let client = Client::new(&conn)?;
            client.call("DELETE", &entry_path(&cache, &key), None)?;
            if !client.json {
                println!("deleted {key:?} from cache {cache:?}");
            }
        }
        EntryCommand::List { cache, prefix, limit, conn } => {
            let client = Client::new(&conn)?;
            let mut cursor: Option<String> = None;
            let mut all: Vec<String> = Vec::new();
            loop {
                let mut path = format!(
                    "/caches/{}/keys?limit=1000&prefix={}",
                    segment(&cache),
                    segment(&prefix)
                );
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={}", segment(c)));
                }
                let v = client.call("GET", &path, None)?.json()?;
                all.extend(v["keys"].as_array().into_iter().flatten().map(cell));
                cursor = v["next"].as_str().map(str::to_string);
                if cursor.is_none() || limit.is_some_and(|l| all.len() >= l) {
                    break;
                }
            }
            if let Some(l) = limit {
                all.truncate(l);
            }
            if client.json {
                println!("{}", json!({ "keys": all }));
            } else {
                for k in all {
                    println!("{k}");
                }
            }
        }
    }
    Ok(())
}

pub(super) fn key_command(k: KeyCommand) -> Outcome<()> {
    match k {
        KeyCommand::Create { name, scopes, caches, conn } => {
            let client = Client::new(&conn)?;
            let mut body = json!({ "name": name, "scopes": scopes });
            if !caches.is_empty() {
                body["caches"] = json!(caches);
            }
            let v = client.call_json("POST", "/keys", &body)?.json()?;
            print_json_or(&client, &v, |v| {
                println!("{}", cell(&v["key"]));
                eprintln!("key {name:?} created; it is shown only now");
            });
        }
        KeyCommand::List(ConnOnly { conn }) => {
            let client = Client::new(&conn)?;
            let v = client.call("GET", "/keys", None)?.json()?;
            print_json_or(&client, &v, |v| {
                let rows: Vec<Vec<String>> = v["keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|k| {
                        vec![
                            cell(&k["name"]),
                            cell(&k["scopes"]),
                            if k["caches"].is_null() { "all".into() } else { cell(&k["caches"]) },
                            if k["from_config"].as_bool() == Some(true) { "config" } else { "api" }
                                .into(),
                        ]
                    })
                    .collect();
                table(&["NAME", "SCOPES", "CACHES", "FROM"], &rows);
            });
        }
        KeyCommand::ResetAdmin { data } => {
            let key = omnicache_server::ApiKeys::reset_admin(&data)
                .map_err(|e| Failure::failed(e.to_string()))?;
            println!("admin key: {key}");
            println!("(also in {}, readable by you only)", data.join("admin.key").display());
        }
        KeyCommand::Revoke { name, conn } => {
            let client = Client::new(&conn)?;
            client.call("DELETE", &format!("/keys/{}", segment(&name)), None)?;
            if !client.json {
                println!("revoked key {name:?}");
            }
        }
    }
    Ok(())
}

/// Streams the body of `GET path` to `output` (or stdout), a spinner on the terminal when
/// writing to a file; returns the number of lines (JSONL records).
pub(super) fn download(client: &Client, path: &str, output: Option<&Path>) -> Outcome<u64> {
    let resp = client.send("GET", path, None)?;
    if resp.status().as_u16() >= 400 {
        let reply = client::read_reply(resp)?;
        return Err(client.failure(&reply));
    }
    let mut reader = resp.into_body().into_reader();
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {bytes} exported  {bytes_per_sec}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let mut out: Box<dyn Write> = match output {
        Some(p) => Box::new(
            std::fs::File::create(p)
                .map_err(|e| Failure::usage(format!("{}: {e}", p.display())))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut buf = vec![0u8; 64 << 10];
    let mut lines = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| Failure::failed(format!("reading the export: {e}")))?;
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        out.write_all(&buf[..n])
            .map_err(|e| Failure::failed(format!("writing the export: {e}")))?;
        if output.is_some() {
            spinner.inc(n as u64);
        }
    }
    out.flush().map_err(|e| Failure::failed(format!("writing the export: {e}")))?;
    spinner.finish_and_clear();
    Ok(lines)
}
