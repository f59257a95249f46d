//! `editshard view DATASET`: browse a dataset in a web browser (the `editshard-view` app), or
//! write a static HTML report of it with `--report`.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use clap::Args;
use editshard_view::{ReportOptions, ViewOptions, Viewer, report_html};

use editshard::Result;
use editshard::read::Dataset;
use editshard::storage::Location;

#[derive(Args, Debug)]
pub struct ViewArgs {
    /// The dataset: a directory, file:///abs, http(s)://host/prefix or s3://bucket/prefix.
    pub dataset: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on. Anything but loopback lets other machines browse the dataset.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Also answer requests for this host name (repeatable): a machine name or a reverse
    /// proxy's. Without it, only localhost, 127.0.0.1, [::1] and the --host address are
    /// served; any other Host is refused (a web page rebinding its name to this address
    /// cannot read the dataset through a browser).
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_host: Vec<String>,
    /// Memory that image requests may hold at once (image bytes being served, thumbnail
    /// decodes estimated from each image's header), shared by all requests: the rest wait up
    /// to 10 s, then get 503 with Retry-After.
    #[arg(long, value_name = "SIZE", default_value = "1GiB")]
    pub image_memory: String,
    /// Open the gallery in the default browser (xdg-open / open).
    #[arg(long)]
    pub open: bool,
    /// Write a self-contained HTML report (statistics and a random sample with embedded
    /// thumbnails) to this file instead of serving.
    #[arg(long, value_name = "FILE")]
    pub report: Option<std::path::PathBuf>,
    /// Records in the report's sample.
    #[arg(long, default_value_t = 24)]
    pub sample: usize,
    /// Seed of the report's random sample.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub remote: super::RemoteArgs,
}

pub fn run(args: ViewArgs) -> Result<ExitCode> {
    super::runtime()?.block_on(async {
        let opts = args.remote.storage_options();
        let ds = Dataset::open(Location::parse(&args.dataset, &opts)?).await?;
        if let Some(path) = &args.report {
            let report = ReportOptions {
                records: args.sample,
                seed: args.seed,
                ..ReportOptions::default()
            };
            let html = report_html(&ds, &args.dataset, &report).await;
            editshard::atomic::write_atomically(path, html.as_bytes())?;
            eprintln!(
                "editshard view: wrote {} ({} bytes)",
                path.display(),
                html.len()
            );
            return Ok(ExitCode::SUCCESS);
        }
        let options = ViewOptions {
            image_memory: super::convert::parse_size(&args.image_memory)?,
            allow_hosts: args.allow_host.clone(),
        };
        let viewer = Viewer::bind_with(
            ds,
            &args.dataset,
            SocketAddr::new(args.host, args.port),
            &options,
        )
        .await?;
        let addr = viewer.local_addr();
        if !args.host.is_loopback() {
            eprintln!(
                "editshard view: WARNING: listening on {addr}, which is NOT loopback only.\n\
                 editshard view: WARNING: anyone who can reach this machine on port {} can browse {}.\n\
                 editshard view: WARNING: use --host 127.0.0.1 (the default) unless that is what you want.",
                addr.port(),
                args.dataset
            );
        }
        let url = format!("http://{addr}/");
        // The one line a script waits for (tests read it to learn a port chosen by the OS).
        eprintln!("editshard view: serving {} at {url} (Ctrl-C stops)", args.dataset);
        if args.open {
            open_browser(&url);
        }
        viewer.serve().await?;
        Ok(ExitCode::SUCCESS)
    })
}

fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    if let Err(e) = std::process::Command::new(opener)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        eprintln!("editshard view: could not start {opener} ({e}); open {url} yourself");
    }
}
