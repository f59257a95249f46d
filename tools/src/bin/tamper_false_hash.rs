//! Makes record ID of the dataset in DIR claim a false SHA-256 for its first edit, every CRC
//! valid (`editshard_tools::tamper::claim_a_false_hash`), for the Python package's tests of
//! the verification levels: `tamper_false_hash DIR ID`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, id] = args.as_slice() else {
        eprintln!("usage: tamper_false_hash DIR ID");
        std::process::exit(2);
    };
    editshard_tools::tamper::claim_a_false_hash(std::path::Path::new(dir), id);
}
