//! Writes the `editshard view` fixture dataset (real images, every kind, a hostile
//! instruction) to a directory: `cargo run -p editshard-tools --bin gen_view_sample -- DIR [N]`.

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: gen_view_sample DIR [RECORDS]");
        std::process::exit(2);
    };
    let n = args.next().and_then(|v| v.parse().ok()).unwrap_or(40);
    let m = editshard_tools::view_fixture::write(std::path::Path::new(&dir), n);
    println!("{dir}: {} records in {} shards", m.records, m.shards.len());
}
