//! The `bellwether` command line: `run` (the default), `check config`,
//! `check rules`, `check routes`, `test rules`, `pricing check`,
//! `pricing import litellm`, `version`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bellwether::daemon::{self, RunOptions};

#[derive(Parser)]
#[command(
    name = "bellwether",
    version,
    about = "Observability and alerting daemon for one node"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args, Clone, Debug)]
struct RunArgs {
    /// Config file (YAML). Without it, the embedded default config is used.
    #[arg(long, env = "BELLWETHER_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Data directory. Default: $STATE_DIRECTORY (set by systemd) or ./data.
    #[arg(long, env = "BELLWETHER_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Listen address of the HTTP API, overriding `web.listen_address`.
    #[arg(long, env = "BELLWETHER_LISTEN", global = true)]
    listen: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default when no command is given).
    Run,
    /// Validate configuration.
    Check {
        #[command(subcommand)]
        what: CheckCommand,
    },
    /// Run unit tests.
    Test {
        #[command(subcommand)]
        what: TestCommand,
    },
    /// Notification receivers.
    Notify {
        #[command(subcommand)]
        what: NotifyCommand,
    },
    /// Check or import LLM pricing tables (docs/llm.md).
    Pricing {
        #[command(subcommand)]
        what: PricingCommand,
    },
    /// Print the version.
    Version,
}

#[derive(Subcommand)]
enum NotifyCommand {
    /// Send a one-alert notification to a receiver now, through the real
    /// receiver code (no outbox, no dedup); prints what was sent and the
    /// answer. Exits 1 if any integration failed.
    Test {
        /// An alertmanager.yml. Without it, the `notify` section of
        /// --config (or of the embedded default config) is used.
        #[arg(long = "config.file")]
        config_file: Option<PathBuf>,
        /// The receiver to notify.
        #[arg(long)]
        receiver: String,
        /// An annotation, `name=value` (repeatable). Default
        /// `summary=Test notification from bellwether`.
        #[arg(long = "annotation")]
        annotations: Vec<String>,
        /// When the alert started: RFC 3339 or Unix seconds. Default now.
        #[arg(long = "starts-at")]
        starts_at: Option<String>,
        /// Send the alert as resolved (ended now).
        #[arg(long)]
        resolved: bool,
        /// The alert's generator URL.
        #[arg(long = "generator-url", default_value = "")]
        generator_url: String,
        /// The external URL templates see (`.ExternalURL`). Default
        /// `web.external_url` of --config, else http://localhost:9471.
        #[arg(long = "external-url")]
        external_url: Option<String>,
        /// The alert's labels, `name=value`; `alertname` defaults to `TestAlert`.
        labels: Vec<String>,
    },
}

#[derive(Subcommand)]
enum PricingCommand {
    /// Check a pricing file; prints every error as file:line:col: key.path: message.
    Check {
        /// The pricing file (YAML, the format of exporters/llm-pricing.yaml).
        file: PathBuf,
    },
    /// Convert another tool's price list to bellwether's format, on stdout.
    Import {
        #[command(subcommand)]
        from: ImportSource,
    },
}

#[derive(Subcommand)]
enum ImportSource {
    /// LiteLLM's model_prices_and_context_window.json.
    Litellm {
        /// The JSON file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum TestCommand {
    /// Run rule unit-test files in promtool's format (`promtool test rules`);
    /// exits 1 if any test fails.
    Rules {
        /// The test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CheckCommand {
    /// Validate a config file; prints every error as file:line:col: key.path: message.
    Config {
        /// The config file to check.
        file: PathBuf,
    },
    /// Check Prometheus rule files as `promtool check rules` does: parse
    /// errors with positions, invalid names and templates (exit 1), and
    /// duplicate rules (reported; exit 3 only with --lint-fatal).
    Rules {
        /// Rule files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Make the duplicate-rules lint fatal (exit 3), like promtool's --lint-fatal.
        #[arg(long)]
        lint_fatal: bool,
    },
    /// Print the receivers an alert with the given labels is routed to, as
    /// `amtool config routes test` does (comma-separated, in tree order).
    Routes {
        /// An alertmanager.yml. Without it, the `notify` section of
        /// --config (or of the embedded default config) is used.
        #[arg(long = "config.file")]
        config_file: Option<PathBuf>,
        /// Exit 1 unless the receivers are exactly these (comma-separated).
        #[arg(long = "verify.receivers")]
        verify_receivers: Option<String>,
        /// The alert's labels, `name=value`.
        labels: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Version => {
            println!("bellwether {}", bellwether::VERSION);
            ExitCode::SUCCESS
        }
        Command::Check {
            what: CheckCommand::Config { file },
        } => match bellwether::config::load_file(&file) {
            Ok(_) => {
                println!("{}: config is valid", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
        Command::Check {
            what: CheckCommand::Rules { files, lint_fatal },
        } => check_rules(&files, lint_fatal),
        Command::Check {
            what:
                CheckCommand::Routes {
                    config_file,
                    verify_receivers,
                    labels,
                },
        } => check_routes(
            config_file.as_deref(),
            cli.run.config.as_deref(),
            verify_receivers.as_deref(),
            &labels,
        ),
        Command::Test {
            what: TestCommand::Rules { files },
        } => test_rules(&files),
        Command::Notify {
            what:
                NotifyCommand::Test {
                    config_file,
                    receiver,
                    annotations,
                    starts_at,
                    resolved,
                    generator_url,
                    external_url,
                    labels,
                },
        } => notify_test(NotifyTest {
            am_file: config_file.as_deref(),
            config_file: cli.run.config.as_deref(),
            receiver,
            annotations: &annotations,
            starts_at: starts_at.as_deref(),
            resolved,
            generator_url,
            external_url,
            labels: &labels,
        }),
        Command::Pricing { what } => pricing(what),
        Command::Run => run(cli.run),
    }
}

/// Loads the notify config from an alertmanager.yml, bellwether's config,
/// or the embedded default config; also returns bellwether's
/// `web.external_url` when known.
fn load_notify_config(
    am_file: Option<&std::path::Path>,
    config_file: Option<&std::path::Path>,
) -> Result<(bellwether::notify::config::NotifyConfig, Option<String>), Vec<String>> {
    use bellwether::notify::config;
    let from_config = |c: bellwether::config::Config| {
        let url = c.web.external_url.clone();
        c.notify_config.map(|n| (n, url)).ok_or_else(Vec::new)
    };
    match (am_file, config_file) {
        (Some(file), _) => config::load_file(file).map(|n| (n, None)),
        (None, Some(file)) => bellwether::config::load_file(file)
            .map_err(|e| e.errors)
            .and_then(from_config),
        (None, None) => bellwether::config::load_str(bellwether::config::DEFAULT_CONFIG, "default")
            .map_err(|e| e.errors)
            .and_then(from_config),
    }
}

struct NotifyTest<'a> {
    am_file: Option<&'a std::path::Path>,
    config_file: Option<&'a std::path::Path>,
    receiver: String,
    annotations: &'a [String],
    starts_at: Option<&'a str>,
    resolved: bool,
    generator_url: String,
    external_url: Option<String>,
    labels: &'a [String],
}

/// `notify test`: one alert, routed as the dispatcher would group it, sent
/// to every integration of the receiver.
fn notify_test(args: NotifyTest<'_>) -> ExitCode {
    use bellwether::notify::deliver::{self, http::Outcome};
    use bellwether::notify::{matchers, route::RouteTree, types};
    let fail = |message: String| {
        eprintln!("bellwether: error: {message}");
        ExitCode::from(1)
    };
    let (notify, configured_url) = match load_notify_config(args.am_file, args.config_file) {
        Ok(n) => n,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return ExitCode::from(1);
        }
    };
    if notify.receiver(&args.receiver).is_none() {
        return fail(format!(
            "no receiver named {:?} in the config",
            args.receiver
        ));
    }
    let mut labels = match matchers::parse_label_args(args.labels) {
        Ok(l) => l,
        Err(e) => return fail(format!("Failed to parse labels: {e}")),
    };
    if labels.get("alertname").is_none() {
        labels.set("alertname", "TestAlert");
    }
    let mut annotations = std::collections::BTreeMap::new();
    for a in args.annotations {
        match a.split_once('=') {
            Some((k, v)) => {
                annotations.insert(k.to_string(), v.to_string());
            }
            None => return fail(format!("annotation {a:?} is not name=value")),
        }
    }
    if args.annotations.is_empty() {
        annotations.insert("summary".into(), "Test notification from bellwether".into());
    }
    let now = bellwether::model::now_millis();
    let starts_at = match args.starts_at {
        Some(t) => match bellwether::api::prometheus::parse_time(t) {
            Ok(ms) => ms,
            Err(e) => return fail(format!("--starts-at: {e}")),
        },
        None => now,
    };
    // Group as the dispatcher would: the first route of this receiver.
    let tree = RouteTree::new(&notify);
    let routes = tree.routes_for(&labels);
    let route = routes
        .iter()
        .find(|r| r.opts.receiver == args.receiver)
        .or(routes.first());
    let (group_key, group_labels, repeat, interval) = match route {
        Some(r) => (
            r.group_key(&labels),
            r.group_labels(&labels),
            r.opts.repeat_interval,
            r.opts.group_interval,
        ),
        None => (
            "{}:{}".to_string(),
            bellwether::model::Labels::empty(),
            std::time::Duration::from_secs(4 * 3600),
            std::time::Duration::from_secs(300),
        ),
    };
    let notification = types::Notification {
        receiver: args.receiver.clone(),
        group_key,
        group_labels,
        alerts: vec![types::Alert {
            labels,
            annotations,
            starts_at,
            ends_at: if args.resolved { now } else { 0 },
            generator_url: args.generator_url,
            updated_at: now,
            timeout: false,
        }],
        now,
        repeat_interval: repeat,
        group_interval: interval,
    };
    let external_url = args
        .external_url
        .or(configured_url)
        .unwrap_or_else(|| "http://localhost:9471".to_string());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("starting the runtime: {e}")),
    };
    let results =
        match runtime.block_on(deliver::deliver_now(&notify, &external_url, &notification)) {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
    if results.is_empty() {
        println!(
            "receiver {:?} has nothing to send this alert to",
            args.receiver
        );
        return ExitCode::SUCCESS;
    }
    let mut ok = true;
    for (key, sent, outcome) in results {
        println!("== {key} -> {}", sent.target);
        println!("{}", sent.body.trim_end());
        match outcome {
            Outcome::Delivered { answer } => println!("-- delivered: {}", answer.trim_end()),
            Outcome::Retry { error, .. } | Outcome::Failed { error, .. } => {
                ok = false;
                println!("-- FAILED: {error}");
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `pricing check` and `pricing import litellm`.
fn pricing(what: PricingCommand) -> ExitCode {
    match what {
        PricingCommand::Check { file } => match bellwether::llm::config::load_pricing_file(&file) {
            Ok(table) => {
                println!(
                    "{}: pricing file is valid ({} models)",
                    file.display(),
                    table.models.len()
                );
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in errors {
                    eprintln!("{e}");
                }
                ExitCode::from(1)
            }
        },
        PricingCommand::Import {
            from: ImportSource::Litellm { file },
        } => {
            let imported = std::fs::read_to_string(&file)
                .map_err(|e| format!("{}: {e}", file.display()))
                .and_then(|text| {
                    bellwether::llm::litellm::import(&text)
                        .map_err(|e| format!("{}: {e}", file.display()))
                });
            match imported {
                Ok(imported) => {
                    print!("{}", imported.yaml);
                    for (model, why) in &imported.skipped {
                        eprintln!("skipped {model}: {why}");
                    }
                    eprintln!(
                        "imported {} models, skipped {}",
                        imported.models,
                        imported.skipped.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// `check routes`: amtool's `config routes test`.
fn check_routes(
    am_file: Option<&std::path::Path>,
    config_file: Option<&std::path::Path>,
    verify: Option<&str>,
    labels: &[String],
) -> ExitCode {
    use bellwether::notify::{config, matchers, route::RouteTree};
    let loaded = match (am_file, config_file) {
        (Some(file), _) => config::load_file(file),
        (None, Some(file)) => bellwether::config::load_file(file)
            .map_err(|e| e.errors)
            .and_then(|c| c.notify_config.ok_or_else(Vec::new)),
        (None, None) => bellwether::config::load_str(bellwether::config::DEFAULT_CONFIG, "default")
            .map_err(|e| e.errors)
            .and_then(|c| c.notify_config.ok_or_else(Vec::new)),
    };
    let notify = match loaded {
        Ok(n) => n,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return ExitCode::from(1);
        }
    };
    let labels = match matchers::parse_label_args(labels) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bellwether: error: Failed to parse labels: {e}");
            return ExitCode::from(1);
        }
    };
    let tree = RouteTree::new(&notify);
    let receivers = tree.receivers_for(&labels).join(",");
    println!("{receivers}");
    match verify {
        Some(expected) if expected != receivers => {
            println!("WARNING: Expected receivers did not match resolved receivers.");
            ExitCode::from(1)
        }
        _ => ExitCode::SUCCESS,
    }
}

fn test_rules(files: &[PathBuf]) -> ExitCode {
    // Like promtool, refuse to start when a named file does not exist.
    if let Some(missing) = files.iter().find(|f| !f.exists()) {
        eprintln!(
            "bellwether: error: path '{}' does not exist",
            missing.display()
        );
        return ExitCode::from(1);
    }
    let passed = bellwether::rules::unittest::run_files(
        files,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `check rules`: promtool's output and exit codes (0 ok, 1 errors, 3 lint
/// findings with --lint-fatal).
fn check_rules(files: &[PathBuf], lint_fatal: bool) -> ExitCode {
    let mut errors = false;
    let mut lint = false;
    for file in files {
        println!("Checking {}", file.display());
        let origin = file.display().to_string();
        let outcome = std::fs::read_to_string(file)
            .map_err(|e| vec![format!("{origin}: {e}")])
            .and_then(|text| {
                bellwether::rules::parse_rule_file(
                    &text,
                    &origin,
                    &bellwether::rules::LoadOptions::default(),
                )
            });
        match outcome {
            Ok(checked) if checked.duplicates.is_empty() => {
                let n: usize = checked.groups.iter().map(|g| g.rules().len()).sum();
                println!("  SUCCESS: {n} rules found");
            }
            Ok(checked) => {
                lint = true;
                eprintln!("  FAILED:");
                let mut message = format!(
                    "lint error {} duplicate rule(s) found.\n",
                    checked.duplicates.len()
                );
                for (name, labels) in &checked.duplicates {
                    message.push_str(&format!("Metric: {name}\nLabel(s):\n"));
                    for l in labels.iter() {
                        message.push_str(&format!("\t{}: {}\n", l.name, l.value));
                    }
                }
                message.push_str("Might cause inconsistency while recording expressions");
                eprintln!("{message}");
            }
            Err(problems) => {
                errors = true;
                eprintln!("  FAILED:");
                for p in problems {
                    eprintln!("{p}");
                }
            }
        }
        println!();
    }
    if errors {
        ExitCode::from(1)
    } else if lint && lint_fatal {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

fn run(args: RunArgs) -> ExitCode {
    init_logging();
    let data_dir = args
        .data_dir
        .or_else(|| {
            std::env::var_os("STATE_DIRECTORY").map(|d| {
                // systemd may pass several colon-separated directories; the first is ours.
                let first = d
                    .to_string_lossy()
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                PathBuf::from(first)
            })
        })
        .unwrap_or_else(|| PathBuf::from("data"));
    let options = RunOptions {
        config_file: args.config,
        data_dir,
        listen: args.listen,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bellwether: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(daemon::run(options));
    // The store is closed by now; a query still running on a blocking thread
    // must not hold the exit (dropping the runtime would wait for it).
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bellwether: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BELLWETHER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
