//! The command line: every command, its flags and their help, as clap derives them.

use super::*;
use clap::{Args, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "omnicache",
    version,
    about = "OmniCache: a caching platform for Rust services",
    after_help = "Exit codes: 0 done; 1 the operation failed; 2 the arguments or the request are wrong.\n\nStart with `omnicache serve`, then for example `omnicache cache list`."
)]
pub(super) struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Run the server (memory + disk by default; no external service needed).
    #[command(
        after_help = "Examples:\n  omnicache serve\n  omnicache serve --listen 0.0.0.0:8080 --data /var/lib/omnicache\n  omnicache serve --config deploy/omnicache.toml\n\nEvery config key can be set as OMNICACHE_<KEY> (nested keys joined by __), e.g. OMNICACHE_CACHES__USERS__L1_CAPACITY=50000. Flags win over the environment, which wins over the file."
    )]
    Serve {
        /// A TOML config file (see deploy/omnicache.toml).
        #[arg(long, env = "OMNICACHE_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on. Default: 127.0.0.1:7070.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Directory for the caches' data and the API keys. Default: ./omnicache-data.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Entries a cache keeps in memory unless it says otherwise. Default: 100,000.
        #[arg(long)]
        l1_capacity: Option<u64>,
        /// Threads serving requests. Default: one per core.
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Run a caching reverse proxy (RFC 9111) in front of an HTTP origin, with the server's
    /// REST API beside it for stats and purges.
    #[command(
        after_help = "Examples:\n  omnicache proxy --upstream http://127.0.0.1:3000\n  omnicache proxy --listen 0.0.0.0:80 --upstream http://app:3000 --config deploy/omnicache.toml\n\nResponses live in the named cache --cache (declare it in the config file to give it Redis or S3 tiers; by default memory over disk). Purge by tag (Surrogate-Key) or by path prefix with POST /caches/http/invalidate on the API address, e.g. {\"by\": \"prefix\", \"value\": \"/products/\"}."
    )]
    Proxy {
        /// The origin to forward to: http://host:port[/base].
        #[arg(long)]
        upstream: String,
        /// Address the proxy listens on. Default: 127.0.0.1:8080.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Address of the REST API (stats, invalidation, health). Default: the config's, 127.0.0.1:7070.
        #[arg(long)]
        api: Option<SocketAddr>,
        /// The cache holding responses.
        #[arg(long, default_value = "http")]
        cache: String,
        /// Largest response body stored, in bytes; larger ones stream through.
        #[arg(long, default_value_t = 8 << 20)]
        max_body_bytes: usize,
        /// A TOML config file (see deploy/omnicache.toml).
        #[arg(long, env = "OMNICACHE_CONFIG")]
        config: Option<PathBuf>,
        /// Directory for the caches' data and the API keys. Default: ./omnicache-data.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Manage caches on a server.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Read and write entries on a server.
    #[command(subcommand)]
    Entry(EntryCommand),
    /// Manage API keys on a server (needs an admin key).
    #[command(subcommand)]
    Key(KeyCommand),
    /// A cache's tiers: what they cost.
    #[command(subcommand)]
    Tiers(TiersCommand),
    /// What a server's caches are doing: the most requested keys.
    #[command(subcommand)]
    Analytics(AnalyticsCommand),
    /// Encryption keys, offline, on a key file (`security.key_file` in the config).
    #[command(subcommand)]
    Security(SecurityCommand),
    /// Load entries from a JSON, JSONL or CSV file into a cache, with a progress bar. Invalid
    /// rows are skipped and reported with their line numbers.
    #[command(
        after_help = "Examples:\n  omnicache warm entries.jsonl\n  omnicache warm users.csv --cache users --ttl 3600\n  omnicache warm entries.jsonl --data ./omnicache-data   # offline, into a stopped server's data\n\nRecords: {\"key\": \"...\", \"value\": ..., \"ttl_secs\": n, \"tags\": [...], \"content_type\": \"...\"}; CSV rows: key,value[,ttl_secs[,tags]]"
    )]
    Warm {
        /// The file to load (format by extension: .json, .jsonl/.ndjson, .csv).
        file: PathBuf,
        /// The cache to fill.
        #[arg(long, default_value = "default")]
        cache: String,
        /// Write into this data directory instead of sending to a server.
        #[arg(long)]
        data: Option<PathBuf>,
        /// The format, when the extension does not say: json, jsonl or csv.
        #[arg(long)]
        format: Option<String>,
        /// A TTL in seconds for every entry, replacing the file's.
        #[arg(long)]
        ttl: Option<f64>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Write every live entry of a cache as JSONL (to a file or stdout).
    #[command(
        after_help = "Examples:\n  omnicache export users -o users.jsonl\n  omnicache export users --prefix session: > sessions.jsonl"
    )]
    Export {
        /// The cache.
        cache: String,
        /// Only keys starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// The file to write. Default: stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Load an export back into a cache.
    #[command(after_help = "Example:\n  omnicache import users.jsonl --cache users")]
    Import {
        /// The JSONL file written by `omnicache export`.
        file: PathBuf,
        /// The cache to fill.
        #[arg(long, default_value = "default")]
        cache: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Replay access traces against eviction policies and print hit ratios (all cores).
    #[command(
        after_help = "Examples:\n  omnicache sim trace.gz --policy default,lru,arc,s3fifo,sieve,lirs,wtinylfu,opt --size 1000,1%\n  omnicache sim a.lis b.gz --format csv --plot hits.svg\n\nTrace formats: lines (one key per line, optionally gzip), csv:COLUMN, arc (.lis), lirs, oracle (libCacheSim oracleGeneral); guessed from the file name."
    )]
    Sim {
        /// Trace files.
        #[arg(required = true)]
        traces: Vec<PathBuf>,
        /// Policies: any of the strategies, `default` and `opt` (Belady's bound).
        #[arg(long, short, default_value = "default,lru,arc,s3fifo,sieve,lirs,wtinylfu,opt")]
        policy: String,
        /// Cache sizes: entries, or a percentage of the trace's distinct keys.
        #[arg(long, short, default_value = "1%")]
        size: String,
        /// table or csv (`trace,policy,size,requests,hits,hit_ratio`).
        #[arg(long, default_value = "table")]
        format: String,
        /// Draw hit ratio against size as SVG, OPT as the ceiling.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// The trace format when the name does not say.
        #[arg(long)]
        trace_format: Option<String>,
        /// Threads. Default: all cores.
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum CacheCommand {
    /// Create a cache (needs admin).
    #[command(
        after_help = "Examples:\n  omnicache cache create users\n  omnicache cache create sessions --policy wtinylfu --max-bytes 268435456 --ttl 3600"
    )]
    Create {
        /// 1 to 64 of a-z, 0-9, '-' and '_'.
        name: String,
        /// The eviction policy (s3fifo, lru, lfu, ttl, gdsf, arc, lirs, lrb, selector, sieve,
        /// wtinylfu, wtinylfu-fixed).
        #[arg(long)]
        policy: Option<String>,
        /// Entries kept in memory.
        #[arg(long)]
        capacity: Option<u64>,
        /// Bound memory by value bytes instead.
        #[arg(long)]
        max_bytes: Option<u64>,
        /// Default TTL in seconds.
        #[arg(long)]
        ttl: Option<f64>,
        #[command(flatten)]
        conn: Connection,
    },
    /// List the caches.
    List(ConnOnly),
    /// A cache's policy, configuration and tiers.
    Info(Named),
    /// Switch a cache's eviction policy live, keeping every entry (needs admin).
    #[command(after_help = "Example:\n  omnicache cache set-policy users arc")]
    SetPolicy {
        /// The cache.
        name: String,
        /// The new policy.
        policy: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Delete a cache and its data (needs admin).
    Delete(Named),
    /// Hit ratio, removals and per-tier counters.
    Stats(Named),
    /// Remove every entry.
    Clear(Named),
}

#[derive(Debug, Args)]
pub(super) struct ConnOnly {
    #[command(flatten)]
    pub(super) conn: Connection,
}

#[derive(Debug, Args)]
pub(super) struct Named {
    /// The cache.
    pub(super) name: String,
    #[command(flatten)]
    pub(super) conn: Connection,
}

#[derive(Debug, Subcommand)]
pub(super) enum EntryCommand {
    /// Print a value (raw bytes to stdout or --output).
    #[command(after_help = "Example:\n  omnicache entry get users alice")]
    Get {
        /// The cache.
        cache: String,
        /// The key.
        key: String,
        /// Write the value here instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Store a value (from the argument, --file, or stdin).
    #[command(
        after_help = "Examples:\n  omnicache entry set users alice '{\"plan\":\"pro\"}' --content-type application/json --ttl 3600\n  omnicache entry set images logo --file logo.png --content-type image/png\n  echo hi | omnicache entry set default greeting"
    )]
    Set {
        /// The cache.
        cache: String,
        /// The key.
        key: String,
        /// The value. Default: --file, else stdin.
        value: Option<String>,
        /// Read the value from this file.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Time to live in seconds.
        #[arg(long)]
        ttl: Option<f64>,
        /// Comma-separated tags.
        #[arg(long)]
        tags: Option<String>,
        /// The content type to keep with it.
        #[arg(long, default_value = "application/octet-stream")]
        content_type: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Delete an entry.
    Delete {
        /// The cache.
        cache: String,
        /// The key.
        key: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Report that an entry's value is bad; enough complaints within the cache's window
    /// invalidate it everywhere.
    #[command(after_help = "Example:\n  omnicache entry complain users alice")]
    Complain {
        /// The cache.
        cache: String,
        /// The key.
        key: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// List keys by prefix (every page).
    List {
        /// The cache.
        cache: String,
        /// Only keys starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Stop after this many keys.
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum TiersCommand {
    /// The estimated monthly cost of what each tier holds, and of its requests at the rate seen
    /// since the server started, by each tier's cost model (config `cost`).
    #[command(after_help = "Example:\n  omnicache tiers cost users")]
    Cost(Named),
}

#[derive(Debug, Subcommand)]
pub(super) enum AnalyticsCommand {
    /// The keys of a cache read most often through the API since the server started (an
    /// upper bound of each count, and how much it may be over).
    #[command(after_help = "Example:\n  omnicache analytics top users -n 10")]
    Top {
        /// The cache.
        name: String,
        /// How many keys, 1 to 256.
        #[arg(short, default_value_t = 20)]
        n: usize,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum SecurityCommand {
    /// Make a key file with one new AES-256 key (mode 0600); refuses to overwrite one.
    #[command(
        after_help = "Example:\n  omnicache security keygen --keys /etc/omnicache/keys.json"
    )]
    Keygen {
        /// The key file to write.
        #[arg(long)]
        keys: PathBuf,
    },
    /// Add a new key that encrypts new writes from now on; the previous one still decrypts.
    /// A running server reads the file again when it restarts.
    Rotate {
        /// The key file.
        #[arg(long)]
        keys: PathBuf,
    },
    /// The audit log of a data directory.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Export every entry of a data subject from every cache of a server, as JSON Lines with
    /// each record's cache (needs an admin key).
    #[command(after_help = "Example:\n  omnicache security export user-4711 -o user-4711.jsonl")]
    Export {
        /// The data subject.
        subject: String,
        /// Write to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Erase every entry of a data subject from every cache of a server, in memory and in every
    /// tier (needs an admin key). Prints what each cache removed.
    #[command(after_help = "Example:\n  omnicache security erase user-4711")]
    Erase {
        /// The data subject, as given on writes (`?subject=` or `X-Data-Subject`).
        subject: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Find personal data and secrets in text: reads JSON Lines `{"id": "...", "text": "..."}`
    /// and prints one JSON line per finding, `{"id", "kind", "start", "end", "confidence"}`
    /// (byte offsets into the text). Kinds: email, phone, credit_card, iban, us_ssn,
    /// ip_address, jwt, secret. Lines that are not UTF-8 are skipped and counted; a line that
    /// is not a record is named on standard error and the exit code is 1.
    #[command(
        after_help = "Examples:\n  omnicache security scan messages.jsonl\n                              echo '{\"id\":\"1\",\"text\":\"mail ana@example.org\"}' | omnicache security scan"
    )]
    Scan {
        /// The input; `-` or nothing reads standard input.
        file: Option<PathBuf>,
        /// Report only findings at least this sure (0 to 1).
        #[arg(long, default_value_t = 0.5)]
        min_confidence: f32,
    },
    /// Retire an encryption key on a running server: a re-encryption pass first rewrites what
    /// it still encrypts, then it decrypts nothing more (needs an admin key). Refused while
    /// entries still use it, unless --force (they become unreadable).
    #[command(after_help = "Example:\n  omnicache security retire 1")]
    Retire {
        /// The key id (`omnicache security keys`).
        id: u32,
        /// Retire it even if stored entries still use it.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        conn: Connection,
    },
    /// List the keys of a key file: ids and states, never the keys themselves.
    Keys {
        /// The key file.
        #[arg(long)]
        keys: PathBuf,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum AuditCommand {
    /// Check the audit log's chain: exit 0 when intact (printing its head), 1 naming the first
    /// bad line when a record was edited, deleted, reordered or inserted, or a line was cut.
    /// Compare the head with one saved earlier (`GET /security/audit/head`) to catch a log cut
    /// back to an earlier record.
    #[command(
        after_help = "Example:\n  omnicache security audit verify --data /var/lib/omnicache"
    )]
    Verify {
        /// The log. Default: DATA/audit.log.
        file: Option<PathBuf>,
        /// The server's data directory (its audit.key checks the chain).
        #[arg(long, default_value = "omnicache-data")]
        data: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum KeyCommand {
    /// Make a key; it is printed once.
    #[command(
        after_help = "Example:\n  omnicache key create users-reader --scope read --cache users"
    )]
    Create {
        /// A unique name.
        name: String,
        /// read, write or admin; repeat for several.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Limit the key to this cache; repeat for several. Default: all caches.
        #[arg(long = "cache")]
        caches: Vec<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// List keys (never the keys themselves).
    List(ConnOnly),
    /// Revoke a key made with `key create` (never the last admin key).
    Revoke {
        /// Its name.
        name: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Make a new admin key when every admin key is lost: run on the server's machine, with
    /// the server stopped, against its data directory. Prints the key and writes it to
    /// DATA/admin.key (0600).
    #[command(after_help = "Example:\n  omnicache key reset-admin --data /var/lib/omnicache")]
    ResetAdmin {
        /// The server's data directory.
        #[arg(long, default_value = "omnicache-data")]
        data: PathBuf,
    },
}
