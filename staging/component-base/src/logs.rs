//! Logging flags and setup (upstream `component-base/logs`): `--logging-format=text|json`
//! and klog's `-v` verbosity, mapped onto tracing levels.

use clap::Args;

#[derive(Args, Clone, Debug)]
pub struct LoggingOptions {
    /// Sets the log format. Permitted formats: "json", "text".
    #[arg(long = "logging-format", default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Number for the log level verbosity (klog: 0-10; >=4 debug, >=6 trace).
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
    /// Comma-separated list of pattern=N settings for file-filtered logging (accepted for compatibility).
    #[arg(long = "vmodule", default_value = "")]
    pub vmodule: String,
}

impl LoggingOptions {
    /// Installs the global subscriber. `RUST_LOG` overrides the level from `-v`.
    pub fn init(&self) {
        let level = match self.verbosity {
            0..=3 => "info",
            4 | 5 => "debug",
            _ => "trace",
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!(
                "{level},h2=info,hyper=info,tower=info,rustls=info"
            ))
        });
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        if self.format == "json" {
            let _ = builder.json().flatten_event(true).try_init();
        } else {
            let _ = builder.try_init();
        }
    }
}
